"""A stdio server that writes too much: ``big`` returns ``n`` characters, ``shout`` writes ``n``
lines to stderr; ``add`` is an ordinary tool.

    python -m tests.unit.servers.flood
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("flood")


@server.tool()
def big(n: int) -> str:
    return "x" * n


@server.tool()
def shout(n: int) -> str:
    for i in range(n):
        print(f"line {i} " + "y" * 200, file=sys.stderr)
    sys.stderr.flush()
    return "shouted"


@server.tool()
def add(a: int, b: int) -> str:
    return str(a + b)


if __name__ == "__main__":
    server.run("stdio")
