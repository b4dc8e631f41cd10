"""`Proxy`: the MCP request handlers of one ``/mcp`` door (the aggregate, or ``/mcp/<label>``).

Every request is passed to the server its name or URI routes to (`View`) and its answer passed
back: tools, prompts, resources and resource templates (listed a page at a time), resource
subscriptions, completion, logging levels. A key's grant (`Permissions`) applies to each: a
server it may not use is not in its view at all, a tool it may not use is neither listed nor
called. A client with an MCP session uses sessions of its own (`ClientLink`), so what a server
asks of its client reaches it; a sessionless (2026-07-28) request uses the shared ones.

Errors: a server's own JSON-RPC error reaches the client as that error. A tool call that fails
(unknown tool, unavailable server, timeout) is a failed result (``isError``), as the loop sees it.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from pydantic import BaseModel

from vllm_mcp_ext.access import Caller, Grant
from vllm_mcp_ext.errors import Unauthorized
from vllm_mcp_ext.proxy.link import ClientLink
from vllm_mcp_ext.proxy.view import Page, View
from vllm_mcp_ext.runtime import Runtime
from vllm_mcp_ext.servers import McpSession
from vllm_mcp_ext.types.source import CallFailed, ServerUnavailable

logger = logging.getLogger(__name__)

NAME = "vllm-mcp-ext"
RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for resources/read of an unknown URI
MAX_OWNERS = 4096  # URIs and URI templates remembered with the server that listed them
MAX_LINKS = 100  # /mcp sessions with sessions of their own at once (VLLM_MCP_MAX_SESSIONS)
# why a stateless door (several API server processes: api/mcp.py) refuses what needs a session
NEEDS_SESSION = (
    "{} needs an MCP session, and this server runs several API server processes, so /mcp serves "
    "each request alone (docs/gateway.md); a server with one API server process keeps sessions"
)


@dataclass(frozen=True)
class _Listing:
    """One list method: its request, result, item field, and what the proxy does to an item."""

    request: type[BaseModel]
    result: type[BaseModel]
    field: str
    capable: Callable[[types.ServerCapabilities], bool]
    named: bool  # items carry a name (tools, prompts) that the aggregate prefixes


_TOOLS = _Listing(types.ListToolsRequest, types.ListToolsResult, "tools", lambda c: c.tools is not None, True)
_PROMPTS = _Listing(
    types.ListPromptsRequest, types.ListPromptsResult, "prompts", lambda c: c.prompts is not None, True
)
_RESOURCES = _Listing(
    types.ListResourcesRequest,
    types.ListResourcesResult,
    "resources",
    lambda c: c.resources is not None,
    False,
)
_TEMPLATES = _Listing(
    types.ListResourceTemplatesRequest,
    types.ListResourceTemplatesResult,
    "resource_templates",
    lambda c: c.resources is not None,
    False,
)


class Proxy:
    def __init__(
        self, runtime: Runtime, label: str | None, links: dict[str, ClientLink], *, stateless: bool = False
    ):
        self.runtime = runtime
        self.label = label  # None: the aggregate
        self.stateless = stateless  # no sessions: no subscriptions or log levels (they would be shared)
        self.links = links  # by MCP session id; the door closes them with their sessions
        self._owners: OrderedDict[str, str] = OrderedDict()  # URI or template -> label
        with warnings.catch_warnings():  # logging is deprecated at 2026-07-28, served before it
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            self.server: Server[Any] = self._server(label)

    def _server(self, label: str | None) -> Server[Any]:
        return Server(
            NAME if label is None else f"{NAME}/{label}",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_completion=self._complete,
            on_set_logging_level=self._set_level,
        )

    # -- who asks, and through which sessions -------------------------------------------------

    def _view(self, ctx: Any) -> tuple[View, Grant]:
        grant = self.runtime.service.permissions.grant(_caller(ctx, self.runtime))
        labels = tuple(c.label for c in self.runtime.registry.connections if grant.allows_server(c.label))
        if self.label is not None:
            labels = (self.label,) if self.label in labels else ()
        return View(labels, aggregate=self.label is None), grant

    def _link(self, ctx: Any) -> ClientLink | None:
        request = getattr(ctx, "request", None)
        session_id = request.headers.get("mcp-session-id") if request is not None else None
        if session_id is None:
            return None
        link = self.links.get(session_id)
        if link is None:
            if len(self.links) >= MAX_LINKS:
                raise MCPError(types.INTERNAL_ERROR, f"too many /mcp sessions (limit {MAX_LINKS})")
            link = self.links[session_id] = ClientLink(self.runtime.registry, self.label is None)
        link.seen(ctx.session)
        return link

    async def _upstream(self, ctx: Any, label: str) -> McpSession:
        """Raises `ServerUnavailable`."""
        link = self._link(ctx)
        if link is not None:
            return await link.session(label)
        conn = self.runtime.registry.get(label)
        if conn is None:
            raise ServerUnavailable(f"MCP server {label!r} is not configured")
        return await conn.session()

    async def _send(self, ctx: Any, label: str, request: BaseModel, result: type[BaseModel]) -> Any:
        """``request`` on ``label``'s session; its error as the client's error."""
        try:
            upstream = await self._upstream(ctx, label)
            link = self._link(ctx)
            if link is None:
                return await upstream.request(lambda s: s.send_request(request, result))  # type: ignore[arg-type]
            with link.calling(label, ctx.session, ctx.request_id):
                return await upstream.request(lambda s: s.send_request(request, result))  # type: ignore[arg-type]
        except ServerUnavailable as exc:
            raise MCPError(types.INTERNAL_ERROR, exc.message) from None
        except CallFailed as exc:
            raise MCPError(exc.rpc_code, exc.message) from None

    # -- lists ------------------------------------------------------------------------------

    async def _list(self, ctx: Any, params: types.PaginatedRequestParams | None, kind: _Listing) -> Any:
        view, grant = self._view(ctx)
        page: Page | None = view.page(params.cursor if params is not None else None)
        if view.aggregate and page == view.page(None):  # open this client's sessions at once
            await asyncio.gather(
                *(self._upstream(ctx, label) for label in view.labels), return_exceptions=True
            )
        items: list[Any] = []
        while page is not None:
            listed = await self._page(ctx, page, kind)
            if listed is not None:
                items += [self._shown(view, grant, page.label, kind, i) for i in getattr(listed, kind.field)]
                if listed.next_cursor is not None:
                    next_page = Page(page.label, listed.next_cursor)
                    return kind.result(
                        **{kind.field: [i for i in items if i is not None]},
                        next_cursor=view.cursor(next_page),
                    )
            page = view.following(page.label)
        return kind.result(**{kind.field: [i for i in items if i is not None]})

    async def _page(self, ctx: Any, page: Page, kind: _Listing) -> Any:
        """One page of one server; None when it is unavailable or serves no such list."""
        try:
            upstream = await self._upstream(ctx, page.label)
        except ServerUnavailable as exc:
            logger.info("/mcp: server %r left out: %s", page.label, exc.message)
            return None
        if not kind.capable(upstream.capabilities):
            return None
        params = types.PaginatedRequestParams(cursor=page.cursor) if page.cursor is not None else None
        try:
            return await upstream.request(lambda s: s.send_request(kind.request(params=params), kind.result))  # type: ignore[arg-type, call-arg]
        except CallFailed as exc:
            if page.cursor is not None:  # the client's cursor: its error is the client's
                raise MCPError(exc.rpc_code, exc.message) from None
            logger.info("/mcp: %s of server %r left out: %s", kind.field, page.label, exc.message)
            return None

    def _shown(self, view: View, grant: Grant, label: str, kind: _Listing, item: Any) -> Any:
        if kind is _TOOLS and not grant.allows_tool(label, item.name):
            return None
        if kind.named:
            return item.model_copy(update={"name": view.shown(label, item.name)})
        if view.aggregate:
            self._own(item.uri if kind is _RESOURCES else item.uri_template, label)
        return item

    def _own(self, uri: str, label: str) -> None:
        self._owners[uri] = label
        self._owners.move_to_end(uri)
        while len(self._owners) > MAX_OWNERS:
            self._owners.popitem(last=False)

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        result: types.ListToolsResult = await self._list(ctx, params, _TOOLS)
        return result

    async def _list_prompts(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        result: types.ListPromptsResult = await self._list(ctx, params, _PROMPTS)
        return result

    async def _list_resources(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        result: types.ListResourcesResult = await self._list(ctx, params, _RESOURCES)
        return result

    async def _list_templates(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        result: types.ListResourceTemplatesResult = await self._list(ctx, params, _TEMPLATES)
        return result

    # -- tools and prompts by name ----------------------------------------------------------

    async def _resolve(self, ctx: Any, view: View, shown: str, kind: _Listing) -> tuple[str, str] | None:
        """The server and own name of a shown name: the first candidate whose server lists it
        (no lookup when there is one candidate)."""
        candidates = view.candidates(shown)
        if len(candidates) == 1:
            return candidates[0]
        for label, name in candidates:
            listed = await self._page(ctx, Page(label, None), kind)
            if listed is not None and name in [item.name for item in getattr(listed, kind.field)]:
                return label, name
        return None

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        view, grant = self._view(ctx)
        target = await self._resolve(ctx, view, params.name, _TOOLS)
        if target is None or not grant.allows_tool(*target):
            return _failed(f"Unknown tool {params.name!r}")

        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        label, name = target
        try:
            upstream = await self._upstream(ctx, label)
            link = self._link(ctx)
            if link is None:
                return await upstream.call_tool(name, params.arguments or {}, progress=forward)
            with link.calling(label, ctx.session, ctx.request_id):
                return await upstream.call_tool(name, params.arguments or {}, progress=forward)
        except (ServerUnavailable, CallFailed) as exc:
            return _failed(exc.message)

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        view, _ = self._view(ctx)
        target = await self._resolve(ctx, view, params.name, _PROMPTS)
        if target is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt {params.name!r}")
        label, name = target
        request = types.GetPromptRequest(
            params=types.GetPromptRequestParams(name=name, arguments=params.arguments)
        )
        result: types.GetPromptResult = await self._send(ctx, label, request, types.GetPromptResult)
        return result

    # -- resources by URI -------------------------------------------------------------------

    def _owners_of(self, view: View, uri: str) -> tuple[str, ...]:
        """Where a URI may live: the server that listed it, else every server in turn."""
        owner = self._owners.get(uri)
        if owner in view.labels and view.aggregate:
            return (owner,)
        return view.labels

    async def _read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        view, _ = self._view(ctx)
        request = types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=params.uri))
        error: MCPError | None = None
        for label in self._owners_of(view, params.uri):
            try:
                result: types.ReadResourceResult = await self._send(
                    ctx, label, request, types.ReadResourceResult
                )
            except MCPError as exc:
                error = error or exc  # the first server's, in configured order
                continue
            if view.aggregate:
                self._own(params.uri, label)
            return result
        raise error or MCPError(RESOURCE_NOT_FOUND, f"Resource not found: {params.uri}")

    async def _subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        request = types.SubscribeRequest(params=types.SubscribeRequestParams(uri=params.uri))
        return await self._each_subscriber(ctx, params.uri, request)

    async def _unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        request = types.UnsubscribeRequest(params=types.UnsubscribeRequestParams(uri=params.uri))
        return await self._each_subscriber(ctx, params.uri, request)

    async def _each_subscriber(self, ctx: Any, uri: str, request: BaseModel) -> types.EmptyResult:
        """To the server that listed ``uri``, else to every server that takes subscriptions."""
        if self.stateless:
            raise MCPError(types.METHOD_NOT_FOUND, NEEDS_SESSION.format("A resource subscription"))
        view, _ = self._view(ctx)
        errors: list[MCPError] = []
        sent = 0
        for label in self._owners_of(view, uri):
            try:
                upstream = await self._upstream(ctx, label)
            except ServerUnavailable:
                continue
            resources = upstream.capabilities.resources
            if resources is None or not resources.subscribe:
                continue
            try:
                await self._send(ctx, label, request, types.EmptyResult)
                sent += 1
            except MCPError as exc:
                errors.append(exc)
        if not sent:
            raise errors[0] if errors else MCPError(types.METHOD_NOT_FOUND, "no server takes subscriptions")
        return types.EmptyResult()

    # -- completion and logging -------------------------------------------------------------

    async def _complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        view, _ = self._view(ctx)
        ref = params.ref
        target: tuple[str, Any] | None = None
        if isinstance(ref, types.PromptReference):
            found = await self._resolve(ctx, view, ref.name, _PROMPTS)
            if found is not None:
                target = found[0], ref.model_copy(update={"name": found[1]})
        else:
            owners = self._owners_of(view, ref.uri)
            target = (owners[0], ref) if len(owners) == 1 else None
        empty = types.CompleteResult(completion=types.Completion(values=[]))
        if target is None:
            return empty
        label, own_ref = target
        try:
            upstream = await self._upstream(ctx, label)
        except ServerUnavailable:
            return empty
        if upstream.capabilities.completions is None:
            return empty
        request = types.CompleteRequest(params=params.model_copy(update={"ref": own_ref, "meta": None}))
        result: types.CompleteResult = await self._send(ctx, label, request, types.CompleteResult)
        return result

    async def _set_level(self, ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """Every server in view that logs gets the level (for this client's sessions only)."""
        if self.stateless:
            raise MCPError(types.METHOD_NOT_FOUND, NEEDS_SESSION.format("A log level"))
        view, _ = self._view(ctx)
        request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=params.level))

        async def one(label: str) -> None:
            try:
                upstream = await self._upstream(ctx, label)
                if upstream.capabilities.logging is not None:
                    await self._send(ctx, label, request, types.EmptyResult)
            except (ServerUnavailable, MCPError) as exc:
                logger.info("/mcp: logging level not set on %r: %s", label, exc)

        await asyncio.gather(*(one(label) for label in view.labels))
        return types.EmptyResult()


def _failed(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _caller(ctx: Any, runtime: Runtime) -> Caller:
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    caller = runtime.keys.caller(headers.get("authorization") if headers is not None else None)
    if caller is None:  # GatewayApp refused it already; a request without HTTP has no key
        raise Unauthorized("a valid API key is required")
    return caller
