"""Server-sent events encoding of Responses stream events."""

from __future__ import annotations

import json

from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext.events.wire import to_wire


def encode(event: ResponseStreamEvent) -> str:
    return f"event: {event.type}\ndata: {json.dumps(to_wire(event), separators=(',', ':'))}\n\n"
