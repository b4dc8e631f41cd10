"""What goes on the wire: SDK models as JSON, shaped to validate against Open Responses and to
parse in the popular clients.

The Open Responses schema requires the response envelope's nullable fields to be present (as null)
but forbids null for the optional fields of message, function_call, reasoning and compaction items (``phase``,
``encrypted_content``...), which the SDK's models would dump as null.

MCP items are not in that schema; they keep OpenAI's shape. OpenAI sends ``mcp_call``'s ``output``,
``error`` and ``approval_request_id`` as null when empty, but leaves out an ``mcp_list_tools``'s
``error`` and a listed tool's ``description`` and ``annotations`` when there are none: the Vercel AI
SDK's schemas (``@ai-sdk/openai``) reject null there, while every client accepts them absent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_PRUNED_ITEMS = {"message", "function_call", "reasoning", "compaction"}
_LISTED_TOOL_OMITTED_WHEN_NULL = ("description", "annotations")


def to_wire(model: BaseModel) -> dict[str, Any]:
    # `schema_` goes out as `schema`; items of our own (events.elicitation) as what they are
    data = model.model_dump(mode="json", by_alias=True, serialize_as_any=True)
    _prune(data)
    return data


def _prune(data: dict[str, Any]) -> None:
    if isinstance(data.get("item"), dict):
        data["item"] = wire_item(data["item"])
    response = data.get("response")
    if isinstance(response, dict):
        _prune(response)
    if isinstance(data.get("output"), list):
        data["output"] = [wire_item(i) if isinstance(i, dict) else i for i in data["output"]]


def wire_item(item: dict[str, Any]) -> dict[str, Any]:
    """One output item as the wire has it (an item dumped by the SDK, nulls included)."""
    kind = item.get("type")
    if kind in _PRUNED_ITEMS:
        return _without_none(item)
    if kind == "mcp_list_tools":
        item = _drop_nulls(item, ("error",))
        tools = item.get("tools")
        if isinstance(tools, list):
            item["tools"] = [
                _drop_nulls(t, _LISTED_TOOL_OMITTED_WHEN_NULL) if isinstance(t, dict) else t for t in tools
            ]
    return item


def _drop_nulls(value: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if not (k in fields and v is None)}


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
