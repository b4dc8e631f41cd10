"""The server of the session-layer tests: the same tools over every transport.

``add`` answers, ``divide`` fails as a tool error on b == 0, ``wait`` runs until cancelled and
touches ``<markers>/<tag>.started`` and ``<tag>.cancelled`` so a test sees what the server saw,
and ``crash`` ends the server in the middle of the call.

    python -m tests.unit.servers.scenario MARKERS stdio
    python -m tests.unit.servers.scenario MARKERS streamable-http|sse PORT
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

TOOLS = ["add", "divide", "wait", "crash"]


def build(markers: Path, die: Callable[[], None]) -> MCPServer:
    server = MCPServer("scenario")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(description="Divide a by b.")
    def divide(a: int, b: int) -> str:
        if b == 0:
            raise ToolError("division by zero")
        return str(a / b)

    @server.tool(description="Wait until cancelled.")
    async def wait(tag: str) -> str:
        (markers / f"{tag}.started").touch()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            (markers / f"{tag}.cancelled").touch()
            raise
        return "waited"

    @server.tool(description="End the server mid-call.")
    async def crash() -> str:
        die()
        await anyio.sleep(60)
        return "still here"

    return server


def main() -> None:
    markers, transport = Path(sys.argv[1]), sys.argv[2]
    server = build(markers, lambda: os._exit(3))
    if transport == "stdio":
        server.run("stdio")
    elif transport == "sse":
        server.run("sse", host="127.0.0.1", port=int(sys.argv[3]))
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[3]))


if __name__ == "__main__":
    main()
