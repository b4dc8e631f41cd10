"""HTTP routes. Errors are mapped to OpenAI-style bodies here, and only here."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from vllm_mcp_ext import _compat, trace
from vllm_mcp_ext.api.disconnect import ClientGone, unless_disconnected, while_connected
from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.api.service import ResponsesService
from vllm_mcp_ext.errors import InvalidRequest, McpExtError, NotFound
from vllm_mcp_ext.events.sse import encode_wire
from vllm_mcp_ext.loop.toolset import listed_tool
from vllm_mcp_ext.servers import ToolServerRegistry

logger = logging.getLogger(__name__)
router = APIRouter()


@dataclass
class PluginState:
    registry: ToolServerRegistry
    service: ResponsesService
    harmony: bool  # gpt-oss: plain requests stay on vLLM's own harmony path


def _plugin(request: Request) -> PluginState:
    state = getattr(request.app.state, "vllm_mcp_ext", None)
    if state is None:
        raise McpExtError("the vllm_mcp_ext plugin is not initialised")
    return state


def error_boundary(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except McpExtError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except Exception:
            logger.exception("unexpected error in %s", handler.__name__)
            error = McpExtError("The server had an error while processing your request.")
            return JSONResponse(error.body(), status_code=500)

    return wrapper


@router.post("/v1/responses")
@error_boundary
async def create_response(raw_request: Request) -> Response:
    try:
        body = json.loads(await raw_request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    plugin = _plugin(raw_request)
    previous = body.get("previous_response_id")
    ours = isinstance(previous, str) and not await _not_ours(plugin, previous)
    route = choose_route(body, harmony=plugin.harmony, previous_is_ours=ours)
    if route.handler == "stock":
        logger.debug("POST /v1/responses goes to vLLM's own handler: %s", route.reason)
        return await _compat.stock_create_responses(body, raw_request)
    service = plugin.service
    prepared = await service.prepare(body)
    streaming = body.get("stream") is True
    if prepared.request.template.background:
        queued = await service.start_background(prepared)
        if streaming:
            return _sse(raw_request, service.follow(prepared.id, None))
        return JSONResponse(queued)
    if streaming:
        return _sse(raw_request, service.events(prepared))
    try:
        return JSONResponse(await unless_disconnected(raw_request, service.complete(prepared)))
    except ClientGone:
        return Response(status_code=499)  # nobody reads it


@router.get("/v1/responses/{response_id}")
@error_boundary
async def retrieve_response(
    response_id: str, raw_request: Request, stream: bool = False, starting_after: int | None = None
) -> Response:
    plugin = _plugin(raw_request)
    if plugin.harmony and await _not_ours(plugin, response_id):
        return await _compat.stock_route(
            "retrieve_responses", response_id, raw_request, starting_after, stream
        )
    record = await plugin.service.get(response_id)
    if stream:
        if not record.background:
            raise InvalidRequest("only background responses can be streamed again", param="stream")
        return _sse(raw_request, plugin.service.follow(response_id, starting_after))
    return JSONResponse(record.response)


@router.delete("/v1/responses/{response_id}")
@error_boundary
async def delete_response(response_id: str, raw_request: Request) -> Response:
    return JSONResponse(await _plugin(raw_request).service.delete(response_id))


@router.post("/v1/responses/{response_id}/cancel")
@error_boundary
async def cancel_response(response_id: str, raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    if plugin.harmony and await _not_ours(plugin, response_id):
        return await _compat.stock_route("cancel_responses", response_id, raw_request)
    return JSONResponse(await plugin.service.cancel(response_id))


@router.get("/v1/responses/{response_id}/input_items")
@error_boundary
async def list_input_items(
    response_id: str,
    raw_request: Request,
    after: str | None = None,
    limit: int = 20,
    order: str = "desc",
) -> Response:
    service = _plugin(raw_request).service
    return JSONResponse(await service.list_input_items(response_id, after=after, limit=limit, order=order))


async def _not_ours(plugin: PluginState, response_id: str) -> bool:
    store = plugin.service.store
    return store is None or await store.get(response_id) is None


def _sse(raw_request: Request, events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """A client that goes away cancels the response's work (engine requests, MCP calls)."""
    return StreamingResponse(_encoded(while_connected(raw_request, events)), media_type="text/event-stream")


async def _encoded(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for event in events:
        yield encode_wire(event)


@router.get("/v1/mcp/servers")
@error_boundary
async def list_servers(raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    data = [
        {
            "label": s.label,
            "transport": s.transport,
            "status": s.status.value,
            "tool_count": s.tool_count,
            "last_error": s.last_error,
        }
        for s in plugin.registry.snapshots()
    ]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/mcp/servers/{label}/tools")
@error_boundary
async def list_server_tools(label: str, raw_request: Request) -> Response:
    plugin = _plugin(raw_request)
    conn = plugin.registry.get(label)
    if conn is None:
        configured = ", ".join(plugin.registry.labels) or "none"
        raise NotFound(f"no MCP server {label!r}; configured: {configured}", param="label")
    tools = await conn.current_tools()
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
