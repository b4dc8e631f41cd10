"""A stdio MCP server that says which process started it: each API server process of ``vllm
serve --api-server-count N`` starts its own stdio servers, so the answer names the API server
process that ran the call."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("api_process")


@server.tool(description="The process id of the process that started this server.")
def parent() -> str:
    return str(os.getppid())


if __name__ == "__main__":
    server.run("stdio")
