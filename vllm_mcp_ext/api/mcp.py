"""``/mcp``: the API server as one streamable-HTTP MCP server with every configured server's tools.

Built on the MCP SDK's low-level `Server` and `StreamableHTTPSessionManager`; the plugin mounts
`GatewayApp` at ``/mcp``; the tools are the gateway's `Catalog` (`servers.gateway`). vLLM's ``--api-key`` middleware guards ``/v1/...`` only, so this door
checks the ``Authorization`` header itself, with the same keys, and each request's key chooses
what it may see (`Permissions`). A ``tools/call`` goes through the configured server's pooled
session (`ServerConnection`): progress notifications come back to the client, a client's
``notifications/cancelled`` cancels the call on the server, and a server's
``notifications/tools/list_changed`` is passed on to every open ``/mcp`` session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from vllm_mcp_ext.access import Caller
from vllm_mcp_ext.errors import Unauthorized
from vllm_mcp_ext.runtime import Runtime
from vllm_mcp_ext.servers.gateway.catalog import Catalog
from vllm_mcp_ext.types.source import CallFailed, ServerUnavailable

logger = logging.getLogger(__name__)

NAME = "vllm-mcp-ext"
STATE_KEY = "vllm_mcp_ext_gateway"  # app.state attribute holding the `McpGateway`


class _Server(Server[Any]):
    def create_initialization_options(self, *args: Any, **kwargs: Any) -> InitializationOptions:
        """Advertise ``tools.listChanged``: the session manager asks with no options."""
        if not args and "notification_options" not in kwargs:
            kwargs["notification_options"] = NotificationOptions(tools_changed=True)
        return super().create_initialization_options(*args, **kwargs)


class McpGateway:
    """The MCP server over a `Runtime`'s configured servers, and its HTTP session manager."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.server = _Server(NAME, on_list_tools=self._list_tools, on_call_tool=self._call_tool)
        self.manager = StreamableHTTPSessionManager(self.server)
        self._sessions: dict[int, ServerSession] = {}  # a live session per client connection
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        for conn in runtime.registry.connections:
            conn.listeners.append(self._tools_changed)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="vllm_mcp_ext:/mcp")
        await self._ready.wait()
        await self.manager.handle_request(scope, receive, send)

    async def aclose(self) -> None:
        for conn in self.runtime.registry.connections:
            with contextlib.suppress(ValueError):
                conn.listeners.remove(self._tools_changed)
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await self._stop.wait()

    # -- MCP handlers ---------------------------------------------------------------------

    def _catalog(self, ctx: Any) -> Catalog:
        self._sessions[id(ctx.session._connection)] = ctx.session
        return Catalog(
            self.runtime.registry, self.runtime.service.permissions.grant(_caller(ctx, self.runtime))
        )

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(await self._catalog(ctx).tools()))

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        catalog = self._catalog(ctx)

        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        try:
            return await catalog.call_tool(params.name, params.arguments or {}, progress=forward)
        except (ServerUnavailable, CallFailed) as exc:
            # a failure of the server behind the gateway is the tool's failure, as the loop sees it
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=exc.message)], is_error=True
            )

    def _tools_changed(self) -> None:
        for key, session in list(self._sessions.items()):
            asyncio.get_running_loop().create_task(self._notify(key, session))

    async def _notify(self, key: int, session: ServerSession) -> None:
        try:
            await session.send_tool_list_changed()
        except Exception as exc:  # the client has gone: forget its session
            logger.debug("/mcp: list_changed not delivered: %s", exc)
            self._sessions.pop(key, None)


def _caller(ctx: Any, runtime: Runtime) -> Caller:
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    caller = runtime.keys.caller(headers.get("authorization") if headers is not None else None)
    if caller is None:  # GatewayApp refused it already; a request without HTTP has no key
        raise Unauthorized("a valid API key is required")
    return caller


class GatewayApp:
    """The ASGI app the plugin mounts at ``/mcp``: checks the key, then serves MCP."""

    def __init__(self) -> None:
        self.__name__ = "mcp_gateway"  # vLLM logs every route's endpoint by name at start-up

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        runtime: Runtime | None = getattr(state, "vllm_mcp_ext", None)
        if runtime is None:
            await JSONResponse({"error": {"message": "the MCP gateway is not ready"}}, 503)(
                scope, receive, send
            )
            return
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if runtime.keys.caller(authorization) is None:
            error = Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
            await JSONResponse(error.body(), error.status)(scope, receive, send)
            return
        gateway = getattr(state, STATE_KEY, None)
        if gateway is None:
            gateway = McpGateway(runtime)
            setattr(state, STATE_KEY, gateway)
        await gateway.handle(scope, receive, send)
