"""Permissions applied to a request's MCP tools: the one check every front door passes through
(`ResponsesService.prepare` calls `permitted`).

A configured server the caller's grant does not name is a `Forbidden` (403) naming the label; a
server it names with some tools only is shown and called with those tools only. Remote
(``server_url``) servers are governed by the ``remoteMcp`` policy, not by this map; the ``/mcp``
gateway source is already built from the grant.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mcp import types

from vllm_mcp_ext.access import Grant
from vllm_mcp_ext.servers import ServerConnection
from vllm_mcp_ext.types.client_handlers import NO_HANDLERS, ClientHandlers
from vllm_mcp_ext.types.request import McpServerUse, ResponsesRequest
from vllm_mcp_ext.types.source import CallFailed, Code


def permitted(request: ResponsesRequest, grant: Grant) -> ResponsesRequest:
    """The request with its configured servers checked and narrowed to ``grant``."""
    if grant.everything:
        return request
    servers = [_permitted(use, grant) for use in request.servers]
    return replace(request, servers=servers)


def _permitted(use: McpServerUse, grant: Grant) -> McpServerUse:
    source = use.source
    if not isinstance(source, ServerConnection):
        return use
    grant.check_server(source.label, param="tools")
    return replace(use, source=PermittedSource(source, grant))


class PermittedSource:
    """A configured server seen through a grant: forbidden tools are neither listed nor called."""

    def __init__(self, connection: ServerConnection, grant: Grant):
        self.connection = connection
        self.grant = grant

    @property
    def label(self) -> str:
        return self.connection.label

    async def current_tools(self) -> tuple[types.Tool, ...]:
        tools = await self.connection.current_tools()
        return tuple(t for t in tools if self.grant.allows_tool(self.label, t.name))

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, handlers: ClientHandlers = NO_HANDLERS
    ) -> types.CallToolResult:
        if not self.grant.allows_tool(self.label, name):
            raise CallFailed(Code.METHOD_NOT_FOUND, f"Unknown tool {name!r}")
        return await self.connection.call_tool(name, arguments, handlers=handlers)
