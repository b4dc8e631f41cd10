"""What the loop needs from an MCP server, whoever opened it: a configured server kept open
across requests (`ServerConnection`), or a remote one a request named by ``server_url``."""

from __future__ import annotations

from typing import Any, Protocol

from mcp import types


class ToolSource(Protocol):
    @property
    def label(self) -> str: ...

    async def current_tools(self) -> tuple[types.Tool, ...]:
        """The server's tools; raises `ServerUnavailable` when it cannot be reached."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """One tools/call; raises `ServerUnavailable` or `CallFailed`."""
        ...
