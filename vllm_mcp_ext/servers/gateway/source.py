"""`GatewaySource`: the gateway as one tool source of a request (``server_url: "/mcp"``)."""

from __future__ import annotations

from typing import Any

from mcp import types

from vllm_mcp_ext.servers.gateway.catalog import Catalog
from vllm_mcp_ext.types.client_handlers import NO_HANDLERS, ClientHandlers


class GatewaySource:
    """Every configured server the caller may use, under the request's ``server_label``; tools
    (and ``allowed_tools``, approvals, items) carry the prefixed names."""

    def __init__(self, label: str, catalog: Catalog):
        self._label = label
        self.catalog = catalog

    @property
    def label(self) -> str:
        return self._label

    async def current_tools(self) -> tuple[types.Tool, ...]:
        return await self.catalog.tools()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, handlers: ClientHandlers = NO_HANDLERS
    ) -> types.CallToolResult:
        return await self.catalog.call_tool(name, arguments, progress=handlers.progress)
