"""Facts MCP server over SSE: `python facts.py --port 8002` serves /sse.

Its `add` collides with the calculator's on purpose: both stay callable, under unique names.
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("facts")
CAPITALS = {"france": "Paris", "japan": "Tokyo", "peru": "Lima"}


@server.tool(description="Capital city of a country.", annotations=ToolAnnotations(read_only_hint=True))
def capital(country: str) -> str:
    return CAPITALS.get(country.lower(), "unknown")


@server.tool(description="Add two numbers as text.")
def add(a: int, b: int) -> str:
    return f"{a} + {b} = {a + b}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    server.run("sse", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
