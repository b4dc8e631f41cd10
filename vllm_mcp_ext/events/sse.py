"""Responses stream events as wire JSON: server-sent events, or WebSocket messages."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext.events.deltas import FAST, delta_json
from vllm_mcp_ext.events.wire import to_wire


def encode(event: ResponseStreamEvent) -> str:
    return f"event: {event.type}\ndata: {to_json(event)}\n\n"


def to_json(event: ResponseStreamEvent) -> str:
    """The event's wire JSON: the ``data`` of its server-sent event, or one WebSocket message."""
    if type(event) in FAST:
        # the per-token events: no item or response inside, so nothing for `to_wire` to prune
        fast = delta_json(event)
        return fast if fast is not None else event.model_dump_json(by_alias=True, ensure_ascii=True)
    return json.dumps(to_wire(event), separators=(",", ":"))


def encode_wire(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
