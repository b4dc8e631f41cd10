"""Server-sent events encoding of Responses stream events."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

from vllm_mcp_ext.events.wire import to_wire

# The per-token events: no item or response inside, so nothing for `to_wire` to prune, and
# pydantic's own JSON encoder gives the same JSON as the dict route in a third of the time.
_FLAT = frozenset(
    {
        ResponseTextDeltaEvent,
        ResponseReasoningTextDeltaEvent,
        ResponseMcpCallArgumentsDeltaEvent,
        ResponseFunctionCallArgumentsDeltaEvent,
    }
)


def encode(event: ResponseStreamEvent) -> str:
    if type(event) in _FLAT:
        data = event.model_dump_json(by_alias=True, ensure_ascii=True)
        return f"event: {event.type}\ndata: {data}\n\n"
    return encode_wire(to_wire(event))


def encode_wire(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
