"""``POST /v1/chat/completions``: requests with ``mcp`` tools run through the Responses core
(`vllm_mcp_ext.chat`); every other request goes to vLLM's own handler. Errors take OpenAI's
``{"error": {...}}`` shape at the one boundary (`api.door`)."""

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
from vllm_mcp_ext.api.door import caller_of, error_boundary, runtime_of
from vllm_mcp_ext.api.routing import choose_chat_route
from vllm_mcp_ext.chat.request import ChatRequest, chat_request
from vllm_mcp_ext.chat.response import ChunkWriter, chunk_wire, completion, completion_wire
from vllm_mcp_ext.errors import McpExtError
from vllm_mcp_ext.loop.run import Run

logger = logging.getLogger(__name__)
router = APIRouter()


@router.post("/v1/chat/completions")
@error_boundary
async def create_chat_completion(raw_request: Request) -> Response:
    raw_body = await read_body(raw_request)
    body = raw_body.data
    route = choose_chat_route(body)
    if route.handler == "stock":
        return await _compat.stock_chat_completion(body, raw_request)
    body = raw_body.for_plugin()  # the plugin's limits, for what the plugin serves
    chat = chat_request(body)
    plugin = runtime_of(raw_request)
    service = plugin.service
    try:
        run = await service.prepare(chat.body, caller_of(raw_request, plugin))
    except McpExtError as exc:
        raise chat.renamed(exc) from None
    if chat.stream:
        return event_stream(raw_request, _sse(service.stream(run), chat, run))
    try:
        response = await unless_disconnected(raw_request, service.complete(run))
    except ClientGone:
        return Response(status_code=499)  # nobody reads it
    return JSONResponse(completion_wire(completion(response)))


async def _sse(events: AsyncIterator[ResponseStreamEvent], chat: ChatRequest, run: Run) -> AsyncIterator[str]:
    writer = ChunkWriter(chat.include_usage)
    try:
        async for event in events:
            for chunk in writer.chunks(event):
                yield _data(chunk_wire(chunk))
    except McpExtError as exc:
        logger.warning("chat completion %s failed: %s", run.id, exc.message)
        yield _data(exc.body())
    yield "data: [DONE]\n\n"


def _data(payload: object) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
