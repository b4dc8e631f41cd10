"""``/v1/responses`` and its stored responses (GET, DELETE, cancel, input_items): the Responses
door. Typed responses and events become wire JSON and server-sent events here; requests the
plugin does not serve go to vLLM's own handlers (`api.routing`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vllm_mcp_ext import _compat
from vllm_mcp_ext.access import Caller
from vllm_mcp_ext.api.affinity import affinity_headers
from vllm_mcp_ext.api.body import read_body
from vllm_mcp_ext.api.disconnect import ClientGone, event_stream, unless_disconnected
from vllm_mcp_ext.api.door import caller_of, error_boundary, runtime_of
from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.events.sse import encode, encode_wire
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.runtime import Runtime

logger = logging.getLogger(__name__)
router = APIRouter()
T = TypeVar("T")


@router.post("/v1/responses")
@error_boundary
async def create_response(raw_request: Request) -> Response:
    raw_body = await read_body(raw_request)
    body = raw_body.data
    plugin = runtime_of(raw_request)
    caller = caller_of(raw_request, plugin)
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
    headers = affinity_headers(run, plugin.replica)
    answer = await _answer(raw_request, plugin, run)
    answer.headers.update(headers)
    return answer


async def _answer(raw_request: Request, plugin: Runtime, run: Run) -> Response:
    service = plugin.service
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
    plugin = runtime_of(raw_request)
    caller = caller_of(raw_request, plugin)
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
    plugin = runtime_of(raw_request)
    return JSONResponse(await plugin.service.stored.delete(response_id, caller_of(raw_request, plugin)))


@router.post("/v1/responses/{response_id}/cancel")
@error_boundary
async def cancel_response(response_id: str, raw_request: Request) -> Response:
    plugin = runtime_of(raw_request)
    caller = caller_of(raw_request, plugin)
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
    plugin = runtime_of(raw_request)
    caller = caller_of(raw_request, plugin)
    stored = plugin.service.stored
    page = await stored.input_items(response_id, after=after, limit=limit, order=order, caller=caller)
    return JSONResponse(page)


async def _not_ours(plugin: Runtime, response_id: str, caller: Caller) -> bool:
    return not await plugin.service.stored.holds(response_id, caller)


def _sse(raw_request: Request, events: AsyncIterator[T], encoder: Callable[[T], str]) -> Response:
    """Typed events (``encode``) or stored wire events (``encode_wire``) as server-sent events.
    A client that goes away cancels the response's work (engine requests, MCP calls)."""
    return event_stream(raw_request, events, encoder)
