"""Server-sent events encoding of Responses stream events."""

from __future__ import annotations

import json

from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext.events.wire import to_wire


def encode(event: ResponseStreamEvent) -> str:
    if hasattr(event, "item") or hasattr(event, "response"):
        data = json.dumps(to_wire(event), separators=(",", ":"))
    else:
        # Deltas and other flat events: nothing to prune, and pydantic's own JSON encoder is
        # several times faster than dump + json.dumps on this per-token path.
        data = event.model_dump_json()
    return f"event: {event.type}\ndata: {data}\n\n"
