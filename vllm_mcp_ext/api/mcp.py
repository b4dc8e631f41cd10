"""``/mcp`` and ``/mcp/<label>``: the API server as a streamable-HTTP MCP server in front of the
configured servers, with everything they serve (`proxy`).

Built on the MCP SDK's low-level `Server` and `StreamableHTTPSessionManager`, one of each per
door (the aggregate, and each label on first use); the plugin mounts `GatewayApp` at both paths.
Before MCP, each request passes two checks, in this order: its ``Host`` and ``Origin`` name this
server (`HostPolicy`, else 403: DNS rebinding), and its key is valid (vLLM's ``--api-key``
middleware guards ``/v1/...`` only, so this door checks the ``Authorization`` header itself, with
the same keys; else 401). Each request's key chooses what it may see (`Permissions`).

The SDK serves both protocol generations: sessions (2025-06-18, 2025-11-25: ``initialize``, then
``Mcp-Session-Id``) and sessionless 2026-07-28 requests (``server/discover``). A session's SSE
streams can be resumed with ``Last-Event-ID`` from a bounded log (`EventLog`).

With several API server processes (``--api-server-count`` above 1) a client's requests land on
any of them, and a session lives in one process's memory; there the doors run the SDK's
stateless mode: ``initialize`` issues no ``Mcp-Session-Id`` and each request is served alone,
through the configured servers' shared sessions, by whichever process it reaches. What needs a
session (a GET stream, resumption, ``list_changed``, subscriptions, log levels, a server's
requests to the client) is then not advertised; a GET or DELETE is a 405, subscriptions and log
levels are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from vllm_mcp_ext.errors import Forbidden, McpExtError, NotFound, Unauthorized
from vllm_mcp_ext.proxy.events import EventLog
from vllm_mcp_ext.proxy.handlers import MAX_LINKS, NAME, Proxy
from vllm_mcp_ext.proxy.link import ClientLink
from vllm_mcp_ext.runtime import Runtime

logger = logging.getLogger(__name__)

__all__ = ["NAME", "STATE_KEY", "GatewayApp", "McpGateway"]

STATE_KEY = "vllm_mcp_ext_gateway"  # app.state attribute holding the `McpGateway`
RETRY_MS = 1000  # the SSE ``retry`` a client waits before resuming a stream
_CHANGES = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)


class _Manager(StreamableHTTPSessionManager):
    """The SDK's session manager, with one event log view per session and the session's own
    server sessions closed when it ends. The two overrides are the SDK's session seams."""

    def __init__(
        self, server: Server[Any], events: EventLog, links: dict[str, ClientLink], *, stateless: bool
    ):
        super().__init__(server, retry_interval=RETRY_MS, max_sessions=MAX_LINKS, stateless=stateless)
        self._events = events
        self._links = links

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            transport._event_store = self._events.session(transport.mcp_session_id)
        return transport

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        await super()._discard_session(session_id, transport)
        self._events.drop(session_id)
        link = self._links.pop(session_id, None)
        if link is not None:
            await link.aclose()


class _Door:
    """One MCP endpoint: its handlers, session manager and the task that runs the manager."""

    def __init__(self, runtime: Runtime, label: str | None, events: EventLog):
        self.links: dict[str, ClientLink] = {}
        stateless = runtime.api_processes > 1  # a session would be known to one process only
        self.proxy = Proxy(runtime, label, self.links, stateless=stateless)
        _advertise(self.proxy.server, runtime, label, stateless)
        self.manager = _Manager(self.proxy.server, events, self.links, stateless=stateless)
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"vllm_mcp_ext:/mcp/{label or ''}")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._ready.wait()
        if self.manager.stateless and scope["method"] != "POST":
            # no session-wide GET stream (it would stay open and carry nothing) and no session to
            # DELETE: the MCP spec's answer for both, as the SDK gives 2026-07-28 requests
            await Response(status_code=405, headers={"Allow": "POST"})(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    async def _run(self) -> None:
        try:
            async with self.manager.run():
                self._ready.set()
                await self._stop.wait()
        finally:
            links = list(self.links.values())
            await asyncio.gather(*(link.aclose() for link in links), return_exceptions=True)

    async def aclose(self) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, 5)


def _advertise(server: Server[Any], runtime: Runtime, label: str | None, stateless: bool) -> None:
    """What ``initialize`` answers: ``listChanged`` for tools, prompts and resources (the servers'
    notifications pass through); at ``/mcp/<label>``, only what that server serves, and its
    instructions, as its last session said (everything until it has opened once). Stateless:
    nothing that needs a session (no ``listChanged``, subscriptions or logging)."""
    plain = server.create_initialization_options

    def options(*args: Any, **kwargs: Any) -> InitializationOptions:
        if not args and "notification_options" not in kwargs and not stateless:
            kwargs["notification_options"] = _CHANGES
        made = plain(*args, **kwargs)
        conn = runtime.registry.get(label) if label is not None else None
        served = conn.served if conn is not None else None
        update: dict[str, Any] = {}
        if served is not None:
            update["capabilities"] = _mirrored(made.capabilities, served.capabilities)
            update["instructions"] = served.instructions
        if stateless:
            update["capabilities"] = _alone(update.get("capabilities", made.capabilities))
        return made.model_copy(update=update) if update else made

    server.create_initialization_options = options  # type: ignore[method-assign]


def _mirrored(ours: types.ServerCapabilities, theirs: types.ServerCapabilities) -> types.ServerCapabilities:
    """Our capabilities less what the server behind does not serve."""
    resources = ours.resources
    if theirs.resources is None:
        resources = None
    elif resources is not None:
        resources = resources.model_copy(update={"subscribe": bool(theirs.resources.subscribe)})
    return ours.model_copy(
        update={
            "tools": ours.tools if theirs.tools is not None else None,
            "prompts": ours.prompts if theirs.prompts is not None else None,
            "resources": resources,
            "logging": ours.logging if theirs.logging is not None else None,
            "completions": ours.completions if theirs.completions is not None else None,
        }
    )


def _alone(caps: types.ServerCapabilities) -> types.ServerCapabilities:
    """Without what a session carries: resource subscriptions and log messages."""
    resources = caps.resources
    if resources is not None:
        resources = resources.model_copy(update={"subscribe": False})
    return caps.model_copy(update={"resources": resources, "logging": None})


class McpGateway:
    """The doors over a `Runtime`'s configured servers: ``/mcp`` and each ``/mcp/<label>``."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.events = EventLog(runtime.service.settings.sse_events)
        self._doors: dict[str | None, _Door] = {}

    def door(self, label: str | None) -> _Door:
        door = self._doors.get(label)
        if door is None:
            door = self._doors[label] = _Door(self.runtime, label, self.events)
        return door

    async def aclose(self) -> None:
        await asyncio.gather(*(d.aclose() for d in self._doors.values()))


class GatewayApp:
    """The ASGI app the plugin mounts at ``/mcp`` and ``/mcp/{label}``."""

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
        label: str | None = scope.get("path_params", {}).get("label")
        try:
            _admit(runtime, scope, label)
        except McpExtError as error:
            await JSONResponse(error.body(), error.status)(scope, receive, send)
            return
        gateway = getattr(state, STATE_KEY, None)
        if gateway is None:
            gateway = McpGateway(runtime)
            setattr(state, STATE_KEY, gateway)
        await gateway.door(label).handle(scope, receive, send)


def _admit(runtime: Runtime, scope: Scope, label: str | None) -> None:
    """Raise the error a request gets before MCP: a foreign Host or Origin, a missing key, a
    server that does not exist or that the key may not use."""
    headers = dict(scope.get("headers") or [])

    def header(name: bytes) -> str | None:
        value = headers.get(name)
        return value.decode("latin-1") if value is not None else None

    refusal = runtime.hosts.refusal(header(b"host"), header(b"origin"))
    if refusal is not None:
        raise Forbidden(f"{refusal} (see VLLM_MCP_ALLOWED_HOSTS)", code="host_not_allowed")
    caller = runtime.keys.caller(header(b"authorization") or "")
    if caller is None:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
    if label is not None:
        if runtime.registry.get(label) is None:
            raise NotFound(f"no MCP server {label!r} is configured")
        runtime.service.permissions.grant(caller).check_server(label)
