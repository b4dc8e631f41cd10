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

from vllm_mcp_ext import _compat
from vllm_mcp_ext.api.disconnect import ClientGone, unless_disconnected
from vllm_mcp_ext.api.request import has_mcp_tools, parse_request
from vllm_mcp_ext.errors import InvalidRequest, McpExtError, NotFound
from vllm_mcp_ext.events.sse import encode
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.loop.request import LoopRequest
from vllm_mcp_ext.loop.runner import AgentLoop, Plan
from vllm_mcp_ext.loop.toolset import listed_tool
from vllm_mcp_ext.remote import RemoteMcp, release_sources
from vllm_mcp_ext.servers import ToolServerRegistry

logger = logging.getLogger(__name__)
router = APIRouter()


@dataclass
class PluginState:
    registry: ToolServerRegistry
    loop: AgentLoop
    seam: _compat.EngineSeam
    remote: RemoteMcp | None = None


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
    if not has_mcp_tools(body):
        return await _compat.stock_create_responses(body, raw_request)
    plugin = _plugin(raw_request)
    plugin.seam.check_model(body.get("model"))
    request = parse_request(body, plugin.registry, plugin.seam.model_name, remote=plugin.remote)
    streaming = False
    try:
        plan = await plugin.loop.prepare(request)
        if body.get("stream"):
            streaming = True  # the stream releases the request's remote sessions when it ends
            return StreamingResponse(_sse(plugin.loop, request, plan), media_type="text/event-stream")
        try:
            final = await unless_disconnected(raw_request, _drain(plugin.loop, request, plan))
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; uvicorn drops it
        return JSONResponse(to_wire(final))
    finally:
        if not streaming:
            release_sources(request)


async def _drain(loop: AgentLoop, request: LoopRequest, plan: Plan) -> Any:
    """The non-streaming response: the last event of the same stream."""
    final = None
    async for event in loop.events(request, plan):
        final = getattr(event, "response", final)
    assert final is not None
    return final


async def _sse(loop: AgentLoop, request: LoopRequest, plan: Plan) -> AsyncIterator[str]:
    try:
        async for event in loop.events(request, plan):
            yield encode(event)
    finally:
        release_sources(request)


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
