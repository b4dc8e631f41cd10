"""The benchmarks' MCP server: `add` answers at once, `wait` after a fixed time.

`python bench_tools.py` serves stdio; `python bench_tools.py --port 8123` serves streamable HTTP
at /mcp.
"""

from __future__ import annotations

import argparse
import asyncio

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("bench")
READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(description="Add two integers.", annotations=READ_ONLY)
def add(a: int, b: int) -> str:
    return str(a + b)


@server.tool(description="Wait ms milliseconds, then say so.", annotations=READ_ONLY)
async def wait(ms: int) -> str:
    await asyncio.sleep(ms / 1000)
    return f"waited {ms} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="serve streamable HTTP on this port (default: stdio)")
    args = parser.parse_args()
    if args.port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
