"""The core's typed Responses events and final `Response`, as Anthropic messages and stream events
(the ``anthropic`` SDK's beta types).

Output items become content blocks in order: reasoning -> ``thinking``, a message -> ``text``, an
``mcp_call`` -> ``mcp_tool_use`` followed by its ``mcp_tool_result``, a function call the client
runs -> ``tool_use`` (``stop_reason: "tool_use"``). The stream sends each block as Anthropic does:
``content_block_start``, deltas (``text_delta``, ``thinking_delta``, ``input_json_delta``),
``content_block_stop``; tool blocks are sent once their call is complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from anthropic.types.beta import (
    BetaMessage,
    BetaRawContentBlockDeltaEvent,
    BetaRawContentBlockStartEvent,
    BetaRawContentBlockStopEvent,
    BetaRawMessageDeltaEvent,
    BetaRawMessageStartEvent,
    BetaRawMessageStopEvent,
    BetaRawMessageStreamEvent,
)
from openai.types.responses import Response, ResponseStreamEvent

from vllm_mcp_ext.errors import McpExtError

StopReason = Literal["end_turn", "max_tokens", "tool_use"]


class Failed(McpExtError):
    """The response failed after it started (an engine error)."""


def message_id(response_id: str) -> str:
    return "msg_" + response_id.removeprefix("resp_")


def stop_reason(response: Response) -> StopReason:
    if response.status == "incomplete":
        return "max_tokens"
    return "tool_use" if any(i.type == "function_call" for i in response.output) else "end_turn"


def usage(response: Response) -> dict[str, int]:
    """Anthropic counts cache reads apart from ``input_tokens``."""
    u = response.usage
    if u is None:
        return {"input_tokens": 0, "output_tokens": 0}
    cached = u.input_tokens_details.cached_tokens
    return {
        "input_tokens": u.input_tokens - cached,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
        "output_tokens": u.output_tokens,
    }


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool_blocks(item: Any) -> list[dict[str, Any]]:
    """An mcp_call as its ``mcp_tool_use`` and ``mcp_tool_result`` blocks; a function call as
    ``tool_use``; other items make none here."""
    if item.type == "function_call":
        return [{"type": "tool_use", "id": item.call_id, "name": item.name, "input": _input(item.arguments)}]
    if item.type == "tool_search_call":
        arguments = item.arguments if isinstance(item.arguments, dict) else {}
        return [{"type": "server_tool_use", "id": item.call_id, "name": SEARCH_TOOL, "input": arguments}]
    if item.type == "tool_search_output":
        return [_search_result(item)]
    if item.type != "mcp_call":
        return []
    use = {"type": "mcp_tool_use", "id": item.id, "name": item.name, "server_name": item.server_label}
    failed = item.error is not None
    text = item.output if not failed else _error_text(item.error)
    result = {
        "type": "mcp_tool_result",
        "tool_use_id": item.id,
        "is_error": failed,
        "content": [{"type": "text", "text": text or ""}],
    }
    return [{**use, "input": _input(item.arguments)}, result]


SEARCH_TOOL = "tool_search_tool_bm25"  # the loop's search ranks by BM25


def _search_result(item: Any) -> dict[str, Any]:
    """A tool search's output as Anthropic's ``tool_search_tool_result``: the tools it found."""
    names: list[str] = []
    for tool in item.tools:
        names += list(tool.allowed_tools or []) if tool.type == "mcp" else [tool.name]
    return {
        "type": "tool_search_tool_result",
        "tool_use_id": item.call_id,
        "content": {
            "type": "tool_search_tool_search_result",
            "tool_references": [{"type": "tool_reference", "tool_name": name} for name in names],
        },
    }


def _error_text(error: Any) -> str:
    """A failed call's text: a protocol or HTTP error's message, or the text blocks the tool
    returned with ``isError`` (what the model read too)."""
    message = getattr(error, "message", None)
    if message:
        return str(message)
    blocks = getattr(error, "content", None) or []
    texts = [b.get("text", "") if isinstance(b, dict) else getattr(b, "text", "") for b in blocks]
    return "\n".join(t for t in texts if t) or "the call failed"


def _failure(response: Response) -> Failed:
    return Failed(response.error.message if response.error else "the response failed")


# -- non-streaming ----------------------------------------------------------------------------


def message(response: Response, context_management: dict[str, Any] | None = None) -> BetaMessage:
    if response.status == "failed":
        raise _failure(response)
    content: list[dict[str, Any]] = []
    for item in response.output:
        if item.type == "message":
            text = "".join(p.text for p in item.content if p.type == "output_text")
            content.append({"type": "text", "text": text})
        elif item.type == "reasoning":
            thinking = "".join(p.text for p in item.content or [])
            content.append({"type": "thinking", "thinking": thinking, "signature": ""})
        else:
            content += _tool_blocks(item)
    return BetaMessage.model_validate(
        {
            "id": message_id(response.id),
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": content,
            "stop_reason": stop_reason(response),
            "stop_sequence": None,
            "usage": usage(response),
            "context_management": context_management,
        }
    )


# -- streaming --------------------------------------------------------------------------------


class EventWriter:
    """One message's stream events from the core's events: owns the content block index."""

    def __init__(self, context_management: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.context_management = context_management  # the applied context edits, at the end
        self.index = -1
        self.open: dict[int, int] = {}  # output_index of a text/thinking item -> its block index

    def events(self, event: ResponseStreamEvent) -> list[BetaRawMessageStreamEvent]:
        if event.type == "response.created":
            r = event.response
            start: dict[str, Any] = {
                "id": message_id(r.id),
                "type": "message",
                "role": "assistant",
                "model": r.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            return [BetaRawMessageStartEvent(type="message_start", message=BetaMessage.model_validate(start))]
        if event.type == "response.output_item.added" and event.item.type in ("message", "reasoning"):
            block = {"type": "text", "text": ""} if event.item.type == "message" else _thinking()
            self.open[event.output_index] = self.index = self.index + 1
            return [_start(self.index, block)]
        if event.type == "response.output_text.delta":
            return [_delta(self.open[event.output_index], {"type": "text_delta", "text": event.delta})]
        if event.type == "response.reasoning_text.delta":
            return [
                _delta(self.open[event.output_index], {"type": "thinking_delta", "thinking": event.delta})
            ]
        if event.type == "response.output_item.done":
            if event.output_index in self.open:
                return [_stop(self.open.pop(event.output_index))]
            return self._tool(event.item)
        if event.type in ("response.completed", "response.incomplete"):
            r = event.response
            return [
                BetaRawMessageDeltaEvent.model_validate(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason(r), "stop_sequence": None},
                        "usage": usage(r),
                        "context_management": self.context_management(),
                    }
                ),
                BetaRawMessageStopEvent(type="message_stop"),
            ]
        if event.type == "response.failed":
            raise _failure(event.response)
        return []

    def _tool(self, item: Any) -> list[BetaRawMessageStreamEvent]:
        out: list[BetaRawMessageStreamEvent] = []
        for block in _tool_blocks(item):
            self.index += 1
            if block["type"] in ("mcp_tool_use", "tool_use", "server_tool_use"):
                arguments = json.dumps(block["input"])
                out.append(_start(self.index, {**block, "input": {}}))
                out.append(_delta(self.index, {"type": "input_json_delta", "partial_json": arguments}))
            else:
                out.append(_start(self.index, block))
            out.append(_stop(self.index))
        return out


def _thinking() -> dict[str, Any]:
    return {"type": "thinking", "thinking": "", "signature": ""}


def _start(index: int, block: dict[str, Any]) -> BetaRawContentBlockStartEvent:
    return BetaRawContentBlockStartEvent.model_validate(
        {"type": "content_block_start", "index": index, "content_block": block}
    )


def _delta(index: int, delta: dict[str, Any]) -> BetaRawContentBlockDeltaEvent:
    return BetaRawContentBlockDeltaEvent.model_validate(
        {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _stop(index: int) -> BetaRawContentBlockStopEvent:
    return BetaRawContentBlockStopEvent(type="content_block_stop", index=index)


def event_wire(event: BetaRawMessageStreamEvent) -> str:
    data = event.model_dump(mode="json", exclude_none=True)
    return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def message_wire(body: BetaMessage) -> dict[str, Any]:
    data = body.model_dump(mode="json", exclude_none=True)
    data["stop_sequence"] = None
    return data


_ERROR_TYPES = {  # Anthropic's error types by HTTP status
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def error_body(exc: McpExtError) -> dict[str, Any]:
    """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ERROR_TYPES.get(exc.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}
