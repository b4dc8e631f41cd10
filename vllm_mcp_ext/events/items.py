"""Items as OpenAI lists them: a request's ``input`` with ids and content parts (``GET
/v1/responses/{id}/input_items``, a conversation's items), and one page of such a list."""

from __future__ import annotations

import copy
from typing import Any

from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.events.ids import new_id

_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "mcp_approval_response": "mcpa",
    "reasoning": "rs",
}


def input_item(item: dict[str, Any]) -> dict[str, Any]:
    """One input item with an id and its content in part form, as OpenAI lists them."""
    item = copy.deepcopy(item)
    kind = item.setdefault("type", "message")
    if kind == "message":
        part = "output_text" if item.get("role") == "assistant" else "input_text"
        if isinstance(item.get("content"), str):
            item["content"] = [{"type": part, "text": item["content"]}]
        item.setdefault("status", "completed")
    item.setdefault("id", new_id(_ID_PREFIX.get(kind, "item")))
    return item


def page(items: list[dict[str, Any]], *, after: str | None, limit: int, order: str) -> dict[str, Any]:
    """One page of a list, in OpenAI's list shape."""
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'", param="order")
    if not 1 <= limit <= 100:
        raise InvalidRequest("'limit' must be between 1 and 100", param="limit")
    ordered = items if order == "asc" else list(reversed(items))
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequest(f"no input item {after!r} in this response", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }
