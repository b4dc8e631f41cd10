"""``POST /v1/messages`` (Anthropic): requests using the MCP connector run through the Responses
core (`vllm_mcp_ext.messages`); every other request goes to vLLM's own handler. This door's
errors take Anthropic's ``{"type": "error", "error": {...}}`` shape, mapped here only."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext import _compat
from vllm_mcp_ext.api.body import read_body
from vllm_mcp_ext.api.disconnect import ClientGone, event_stream, unless_disconnected
from vllm_mcp_ext.api.door import caller_of, error_boundary_in, runtime_of
from vllm_mcp_ext.api.routing import choose_messages_route
from vllm_mcp_ext.errors import McpExtError
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.messages.request import messages_request
from vllm_mcp_ext.messages.response import EventWriter, error_body, event_wire, message, message_wire

logger = logging.getLogger(__name__)
router = APIRouter()


anthropic_errors = error_boundary_in(error_body)  # the same boundary, Anthropic's error shape


@router.post("/v1/messages")
@anthropic_errors
async def create_message(raw_request: Request) -> Response:
    raw_body = await read_body(raw_request)
    body = raw_body.data
    if choose_messages_route(body).handler == "stock":
        return await _compat.stock_messages(body, raw_request)
    body = raw_body.for_plugin()  # the plugin's limits, for what the plugin serves
    request = messages_request(body)
    plugin = runtime_of(raw_request)
    service = plugin.service
    run = await service.prepare(request.body, caller_of(raw_request, plugin))
    run.context_edits = request.edits
    if request.stream:
        return event_stream(raw_request, _sse(service.stream(run), run))
    try:
        response = await unless_disconnected(raw_request, service.complete(run))
    except ClientGone:
        return Response(status_code=499)  # nobody reads it
    return JSONResponse(message_wire(message(response, run.applied_edits.report())))


async def _sse(events: AsyncIterator[ResponseStreamEvent], run: Run) -> AsyncIterator[str]:
    response_id = run.id
    writer = EventWriter(lambda: run.applied_edits.report())
    try:
        async for event in events:
            for out in writer.events(event):
                yield event_wire(out)
    except McpExtError as exc:
        logger.warning("message %s failed: %s", response_id, exc.message)
        yield f"event: error\ndata: {json.dumps(error_body(exc))}\n\n"
