"""A stdio server behind the ``/mcp`` gateway in tests: a result, a tool error, progress, a call
that waits until cancelled (touching ``<markers>/<tag>.started`` and ``.cancelled`` so a test sees
what the server saw), and ``grow``, which adds ``late`` and sends ``tools/list_changed``.

    python -m tests.unit.servers.gateway_backend MARKERS
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

TOOLS = ["add", "divide", "steps", "wait", "grow"]


def late() -> str:
    """Added by grow."""
    return "late"


def build(markers: Path) -> MCPServer:
    server = MCPServer("backend")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(description="Divide a by b.")
    def divide(a: int, b: int) -> str:
        if b == 0:
            raise ToolError("division by zero")
        return str(a / b)

    @server.tool(description="Report progress three times.")
    async def steps(ctx: Context) -> str:
        for i in range(1, 4):
            await ctx.report_progress(i, 3, f"step {i}")
        return "stepped"

    @server.tool(description="Wait until cancelled.")
    async def wait(tag: str) -> str:
        (markers / f"{tag}.started").touch()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            (markers / f"{tag}.cancelled").touch()
            raise
        return "waited"

    @server.tool(description="Add the tool 'late'.")
    async def grow(ctx: Context) -> str:
        server.add_tool(late)
        await ctx.session.send_tool_list_changed()
        return "grown"

    return server


if __name__ == "__main__":
    build(Path(sys.argv[1])).run("stdio")
