"""A stdio MCP server whose tool list grows: 2 s after it is first listed, it adds `late_tool`
and sends `notifications/tools/list_changed` on that session."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp.server.mcpserver import MCPServer


def early_tool() -> str:
    """There from the start."""
    return "early"


def late_tool() -> str:
    """Added while the server runs."""
    return "late"


class GrowingServer(MCPServer):
    scheduled = False

    async def _handle_list_tools(self, ctx: Any, params: Any) -> Any:
        result = await super()._handle_list_tools(ctx, params)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().create_task(self._grow(ctx.session))
        return result

    async def _grow(self, session: Any) -> None:
        await asyncio.sleep(2)
        self.add_tool(late_tool)
        await session.send_tool_list_changed()


server = GrowingServer("late")
server.add_tool(early_tool)

if __name__ == "__main__":
    server.run("stdio")
