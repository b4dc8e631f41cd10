"""Server-sent events encoding of Responses stream events."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext.events.wire import to_wire


def encode(event: ResponseStreamEvent) -> str:
    return encode_wire(to_wire(event))


def encode_wire(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
