"""HTTP routes: the one error boundary (errors become OpenAI-style bodies here, and only here)
and where typed responses and events become wire JSON and server-sent events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vllm_mcp_ext import _compat, trace
from vllm_mcp_ext.access import Caller
from vllm_mcp_ext.api.body import read_body
from vllm_mcp_ext.api.disconnect import ClientGone, event_stream, unless_disconnected
from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.errors import InvalidRequest, McpExtError, NotFound, Unauthorized
from vllm_mcp_ext.events.sse import encode, encode_wire
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.loop.toolset import listed_tool
from vllm_mcp_ext.runtime import Runtime

logger = logging.getLogger(__name__)
router = APIRouter()
T = TypeVar("T")


def _plugin(request: Request) -> Runtime:
    state = getattr(request.app.state, "vllm_mcp_ext", None)
    if state is None:
        raise McpExtError("the vllm_mcp_ext plugin is not initialised")
    return state


def _caller(raw_request: Request, plugin: Runtime) -> Caller:
    """Who sends the request: the key of its ``Authorization`` header, with ``--api-key`` set."""
    caller = plugin.keys.caller(raw_request.headers.get("authorization"))
    if caller is None:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
    return caller


Handler = Callable[..., Awaitable[Response]]


def error_boundary_in(shape: Callable[[McpExtError], dict[str, Any]]) -> Callable[[Handler], Handler]:
    """The one place errors become HTTP answers, in an API's own body ``shape`` (OpenAI's
    ``{"error": {...}}`` by default, Anthropic's on ``/v1/messages``)."""

    def boundary(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Response:
            try:
                return await handler(*args, **kwargs)
            except McpExtError as exc:
                return JSONResponse(shape(exc), status_code=exc.status)
            except Exception:
                logger.exception("unexpected error in %s", handler.__name__)
                error = McpExtError("The server had an error while processing your request.")
                return JSONResponse(shape(error), status_code=500)

        return wrapper

    return boundary


error_boundary = error_boundary_in(McpExtError.body)


@router.post("/v1/responses")
@error_boundary
async def create_response(raw_request: Request) -> Response:
    raw_body = await read_body(raw_request)
    body = raw_body.data
    plugin = _plugin(raw_request)
    caller = _caller(raw_request, plugin)
    previous = body.get("previous_response_id")
    ours = isinstance(previous, str) and await plugin.service.stored.holds(previous, caller)
    own = frozenset(plugin.registry.labels)
    route = choose_route(body, harmony=plugin.harmony, previous_is_ours=ours, own_labels=own)
    if route.handler == "stock":
        logger.debug("POST /v1/responses goes to vLLM's own handler: %s", route.reason)
        return await _compat.stock_create_responses(body, raw_request)
    body = raw_body.for_plugin()  # the plugin's limits, for what the plugin serves
    service = plugin.service
    run = await service.prepare(body, caller)
    if run.request.background:
        queued = await service.start_background(run)
        if run.request.stream:
            return _sse(raw_request, service.stored.follow(run.id, None), encode_wire)
        return JSONResponse(to_wire(queued))
    if run.request.stream:
        return _sse(raw_request, service.stream(run), encode)
    try:
        return JSONResponse(to_wire(await unless_disconnected(raw_request, service.complete(run))))
    except ClientGone:
        return Response(status_code=499)  # nobody reads it


@router.get("/v1/responses/{response_id}")
@error_boundary
async def retrieve_response(
    response_id: str, raw_request: Request, stream: bool = False, starting_after: int | None = None
) -> Response:
    plugin = _plugin(raw_request)
    caller = _caller(raw_request, plugin)
    if plugin.harmony and await _not_ours(plugin, response_id, caller):
        return await _compat.stock_route(
            "retrieve_responses", response_id, raw_request, starting_after, stream
        )
    record = await plugin.service.stored.get(response_id, caller)
    if stream:
        if not record.background:
            raise InvalidRequest("only background responses can be streamed again", param="stream")
        return _sse(raw_request, plugin.service.stored.follow(response_id, starting_after), encode_wire)
    return JSONResponse(record.response)


@router.delete("/v1/responses/{response_id}")
@error_boundary
async def delete_response(response_id: str, raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    return JSONResponse(await plugin.service.stored.delete(response_id, _caller(raw_request, plugin)))


@router.post("/v1/responses/{response_id}/cancel")
@error_boundary
async def cancel_response(response_id: str, raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    caller = _caller(raw_request, plugin)
    if plugin.harmony and await _not_ours(plugin, response_id, caller):
        return await _compat.stock_route("cancel_responses", response_id, raw_request)
    return JSONResponse(await plugin.service.stored.cancel(response_id, caller))


@router.get("/v1/responses/{response_id}/input_items")
@error_boundary
async def list_input_items(
    response_id: str,
    raw_request: Request,
    after: str | None = None,
    limit: int = 20,
    order: str = "desc",
) -> Response:
    plugin = _plugin(raw_request)
    caller = _caller(raw_request, plugin)
    stored = plugin.service.stored
    page = await stored.input_items(response_id, after=after, limit=limit, order=order, caller=caller)
    return JSONResponse(page)


async def _not_ours(plugin: Runtime, response_id: str, caller: Caller) -> bool:
    return not await plugin.service.stored.holds(response_id, caller)


def _sse(raw_request: Request, events: AsyncIterator[T], encoder: Callable[[T], str]) -> Response:
    """Typed events (``encode``) or stored wire events (``encode_wire``) as server-sent events.
    A client that goes away cancels the response's work (engine requests, MCP calls)."""
    return event_stream(raw_request, _encoded(events, encoder))


async def _encoded(events: AsyncIterator[T], encoder: Callable[[T], str]) -> AsyncIterator[str]:
    async for event in events:
        yield encoder(event)


@router.get("/v1/mcp/servers")
@error_boundary
async def list_servers(raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    grant = plugin.service.permissions.grant(_caller(raw_request, plugin))
    data = [
        {
            "label": s.label,
            "transport": s.transport,
            "status": s.status.value,
            "tool_count": s.tool_count,
            "last_error": s.last_error,
        }
        for s in plugin.registry.snapshots()
        if grant.allows_server(s.label)
    ]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/mcp/servers/{label}/tools")
@error_boundary
async def list_server_tools(label: str, raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    grant = plugin.service.permissions.grant(_caller(raw_request, plugin))
    conn = plugin.registry.get(label)
    if conn is None:
        configured = ", ".join(plugin.registry.labels) or "none"
        raise NotFound(f"no MCP server {label!r}; configured: {configured}", param="label")
    grant.check_server(label, param="label")
    tools = [t for t in await conn.current_tools() if grant.allows_tool(label, t.name)]
    data = [listed_tool(t).model_dump(mode="json") for t in tools]
    return JSONResponse({"object": "list", "server_label": label, "data": data})


@router.get("/v1/mcp/traces/{response_id}")
@error_boundary
async def get_trace(response_id: str, raw_request: Request) -> Response:
    """Timings of a finished response, when the server runs with VLLM_MCP_TRACE=1."""
    recorded = trace.finished(response_id)
    if recorded is None:
        hint = "" if trace.enabled() else " (tracing is off: set VLLM_MCP_TRACE=1)"
        raise NotFound(f"no trace for response {response_id!r}{hint}", param="response_id")
    return JSONResponse(recorded.as_dict())
