"""The calculator's tools, names, schemas and descriptions unchanged (so the tiny model calls
them as it was trained to), but `add` takes long: for cancelling a response mid-call.

`add` touches ``<marker>.started`` when it begins and ``<marker>.cancelled`` when it is
cancelled, so a test can see what the server saw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

MARKER = Path(sys.argv[1])
server = MCPServer("calculator")
READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(description="Add two integers.", annotations=READ_ONLY)
async def add(a: int, b: int) -> str:
    MARKER.with_suffix(".started").touch()
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        MARKER.with_suffix(".cancelled").touch()
        raise
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
    raise ToolError("not here")


if __name__ == "__main__":
    server.run("stdio")
