"""A stdio server whose tools carry the MCP annotations the way the reference servers do, for the
operator-policy tests: one tool per approval category, one that returns an e-mail address, one
that is slow.

    python -m tests.unit.servers.annotated
"""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("annotated")
NOTES = ["buy milk"]


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def read_notes() -> str:
    return "; ".join(NOTES) or "no notes"


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def delete_notes() -> str:
    NOTES.clear()
    return "deleted"


@server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=True))
def fetch(url: str) -> str:
    return f"fetched {url}"


@server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
def append_note(text: str) -> str:
    NOTES.append(text)
    return "appended"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def contact() -> str:
    return "Write to ada.lovelace@example.org for details."


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "finally"


if __name__ == "__main__":
    server.run("stdio")
