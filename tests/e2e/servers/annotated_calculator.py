"""The calculator's tools, names, schemas and descriptions unchanged (so the tiny model calls
them as it was trained to), with annotations and misbehaviour chosen on the command line, for the
operator-policy tests:

    annotated_calculator.py [--destructive NAME ...] [--flood-bytes N] [--stderr-lines N]

``--destructive`` marks tools destructive (the rest stay read-only); ``--flood-bytes`` makes
`add` return N characters; ``--stderr-lines`` writes N lines to stderr at start.
"""

from __future__ import annotations

import argparse
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

parser = argparse.ArgumentParser()
parser.add_argument("--destructive", nargs="*", default=[])
parser.add_argument("--flood-bytes", type=int, default=0)
parser.add_argument("--stderr-lines", type=int, default=0)
ARGS = parser.parse_args()
server = MCPServer("calculator")


def hints(name: str) -> ToolAnnotations:
    if name in ARGS.destructive:
        return ToolAnnotations(read_only_hint=False, destructive_hint=True)
    return ToolAnnotations(read_only_hint=True)


@server.tool(description="Add two integers.", annotations=hints("add"))
def add(a: int, b: int) -> str:
    return "x" * ARGS.flood_bytes if ARGS.flood_bytes else str(a + b)


@server.tool(description="Multiply two integers.", annotations=hints("multiply"))
def multiply(a: int, b: int) -> str:
    return str(a * b)


@server.tool(description="Divide a by b.", annotations=hints("divide"))
def divide(a: int, b: int) -> str:
    if b == 0:
        raise ToolError("division by zero")
    return str(a / b)


@server.tool(description="Stop the calculator process (for fault tests).")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    for i in range(ARGS.stderr_lines):
        print(f"noise {i} " + "z" * 100, file=sys.stderr)
    server.run("stdio")
