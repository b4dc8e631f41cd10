"""A calculator built on the previous major of the MCP SDK (1.x, protocol 2025-11-25), run from
its own virtual environment (tests/support/mcp1.py) to check that our 2.x client talks to it.

    python mcp1_server.py stdio
    python mcp1_server.py http PORT
"""

from __future__ import annotations

import sys

from mcp.server.fastmcp import FastMCP  # the 1.x API: this file never runs in the main venv


def build(port: int = 0) -> FastMCP:
    server = FastMCP("calc-v1", host="127.0.0.1", port=port)

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    return server


def main() -> None:
    if sys.argv[1] == "stdio":
        build().run("stdio")
    else:
        build(int(sys.argv[2])).run("streamable-http")


if __name__ == "__main__":
    main()
