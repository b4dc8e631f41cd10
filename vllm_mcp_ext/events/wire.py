"""What goes on the wire: SDK models as JSON, shaped to validate against Open Responses.

The Open Responses schema requires the response envelope's nullable fields to be present (as null)
but forbids null for the optional fields of message, function_call and reasoning items (``phase``,
``encrypted_content``...), which the SDK's models would dump as null. MCP items are not in that
schema; they keep OpenAI's shape, nulls included (``error``, ``output``, ``approval_request_id``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_PRUNED_ITEMS = {"message", "function_call", "reasoning"}


def to_wire(model: BaseModel) -> dict[str, Any]:
    data = model.model_dump(mode="json", by_alias=True)  # `schema_` goes out as `schema`
    _prune(data)
    return data


def _prune(data: dict[str, Any]) -> None:
    if isinstance(data.get("item"), dict):
        data["item"] = _item(data["item"])
    response = data.get("response")
    if isinstance(response, dict):
        _prune(response)
    if isinstance(data.get("output"), list):
        data["output"] = [_item(i) if isinstance(i, dict) else i for i in data["output"]]


def _item(item: dict[str, Any]) -> dict[str, Any]:
    return _without_none(item) if item.get("type") in _PRUNED_ITEMS else item


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value
