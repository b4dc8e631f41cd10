"""Calculator MCP server over stdio: `python calculator.py`."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("calculator")
READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(description="Add two integers.", annotations=READ_ONLY)
def add(a: int, b: int) -> str:
    return str(a + b)


@server.tool(description="Multiply two integers.", annotations=READ_ONLY)
def multiply(a: int, b: int) -> str:
    return str(a * b)


@server.tool(description="Divide a by b.", annotations=READ_ONLY)
def divide(a: int, b: int) -> str:
    if b == 0:
        raise ToolError("division by zero")
    return str(a / b)


@server.tool(description="Stop the calculator process (for fault tests).")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
