"""``/v1/conversations`` and its items (OpenAI's Conversations API); errors go through the same
boundary as ``/v1/responses``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vllm_mcp_ext.access import Caller
from vllm_mcp_ext.api.body import read_json_object
from vllm_mcp_ext.api.door import caller_of, error_boundary, runtime_of
from vllm_mcp_ext.conversations import Conversations

router = APIRouter()


def _conversations(raw_request: Request) -> tuple[Conversations, Caller]:
    """The conversations and who asks (a conversation is private to the key that made it)."""
    plugin = runtime_of(raw_request)
    return plugin.service.conversations, caller_of(raw_request, plugin)


async def _body(raw_request: Request) -> dict[str, Any]:
    return await read_json_object(raw_request, empty_ok=True)


@router.post("/v1/conversations")
@error_boundary
async def create_conversation(raw_request: Request) -> Response:
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.create(await _body(raw_request), caller))


@router.get("/v1/conversations/{conversation_id}")
@error_boundary
async def get_conversation(conversation_id: str, raw_request: Request) -> Response:
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.get(conversation_id, caller))


@router.post("/v1/conversations/{conversation_id}")
@error_boundary
async def update_conversation(conversation_id: str, raw_request: Request) -> Response:
    body = await _body(raw_request)
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.update(conversation_id, body, caller))


@router.delete("/v1/conversations/{conversation_id}")
@error_boundary
async def delete_conversation(conversation_id: str, raw_request: Request) -> Response:
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.delete(conversation_id, caller))


@router.get("/v1/conversations/{conversation_id}/items")
@error_boundary
async def list_items(
    conversation_id: str, raw_request: Request, after: str | None = None, limit: int = 20, order: str = "desc"
) -> Response:
    conversations, caller = _conversations(raw_request)
    return JSONResponse(
        await conversations.list_items(conversation_id, after=after, limit=limit, order=order, caller=caller)
    )


@router.post("/v1/conversations/{conversation_id}/items")
@error_boundary
async def add_items(conversation_id: str, raw_request: Request) -> Response:
    body = await _body(raw_request)
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.add_items(conversation_id, body, caller))


@router.get("/v1/conversations/{conversation_id}/items/{item_id}")
@error_boundary
async def get_item(conversation_id: str, item_id: str, raw_request: Request) -> Response:
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.get_item(conversation_id, item_id, caller))


@router.delete("/v1/conversations/{conversation_id}/items/{item_id}")
@error_boundary
async def delete_item(conversation_id: str, item_id: str, raw_request: Request) -> Response:
    conversations, caller = _conversations(raw_request)
    return JSONResponse(await conversations.delete_item(conversation_id, item_id, caller))
