"""Server-sent events encoding of Responses stream events."""

from __future__ import annotations

from openai.types.responses import ResponseStreamEvent


def encode(event: ResponseStreamEvent) -> str:
    return f"event: {event.type}\ndata: {event.model_dump_json(exclude_unset=False)}\n\n"
