"""``POST /v1/responses/compact``, OpenAI's compact endpoint: a conversation (``input``, the
stored one of ``previous_response_id``, or both) becomes the user's messages followed by one
``compaction`` item the model writes itself (the summary turn of `loop.compaction`), with the
usage of that turn. Sent back as ``input`` to ``POST /v1/responses``, the answer's ``output``
continues the conversation from the summary.

The body is the SDK's ``ResponseCompactParams``. ``model``, ``input``, ``previous_response_id``,
``instructions`` and ``prompt_cache_key`` are checked as ``POST /v1/responses`` checks them (the
key then changes nothing: vLLM's prefix cache needs none); the other fields the SDK can send
(`IGNORED`: service tier, safety identifier, image and prompt-cache options) change nothing on a
vLLM server and are accepted; any other field is a 400. Nothing is stored: the answer is the
client's to send back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from openai.types.responses import ResponseCompactionItem, ResponseInputMessageItem, ResponseUsage

from vllm_mcp_ext.engine.media import input_parts
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.events.stream import Usage
from vllm_mcp_ext.events.wire import wire_item
from vllm_mcp_ext.loop.compaction import Summary, encode, kept_messages

READ = ("model", "input", "previous_response_id", "instructions", "prompt_cache_key")
IGNORED = frozenset(
    {"service_tier", "safety_identifier", "image", "prompt_cache_options", "prompt_cache_retention"}
)


def responses_body(body: dict[str, Any]) -> dict[str, Any]:
    """The compact body as the ``POST /v1/responses`` body `ResponsesService.prepare` checks
    (model, stored conversation, input items): no tools, nothing stored; or a 400."""
    for name, value in body.items():
        if value is not None and name not in READ and name not in IGNORED:
            raise Unsupported(f"{name!r} is not supported by /v1/responses/compact", param=name)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required", param="model", code="missing_required_parameter")
    if body.get("input") is None and body.get("previous_response_id") is None:
        raise InvalidRequest(
            "there is nothing to compact: give 'input', 'previous_response_id' or both",
            param="input",
            code="missing_required_parameter",
        )
    return {**{name: body[name] for name in READ if body.get(name) is not None}, "store": False}


def nothing_to_compact() -> InvalidRequest:
    return InvalidRequest("the conversation to compact has no messages", param="input")


@dataclass(frozen=True)
class Compacted:
    """The compacted conversation: OpenAI's ``CompactedResponse`` (``object:
    "response.compaction"``), whose ``output`` holds user messages, which the SDK's output-item
    types do not describe; `to_wire` is its JSON."""

    id: str
    created_at: int
    messages: list[ResponseInputMessageItem]
    item: ResponseCompactionItem
    usage: ResponseUsage

    @classmethod
    def of(cls, conversation: list[dict[str, Any]], summary: Summary) -> Compacted:
        """The conversation's user messages (not its system or developer ones, as on OpenAI:
        instructions are sent again with each request), then the summary as an item."""
        messages = [_user_item(m["content"]) for m in kept_messages(conversation, ("user",))]
        item = ResponseCompactionItem(
            id=new_id("cmp"), type="compaction", encrypted_content=encode(summary.text)
        )
        usage = Usage()
        usage.add(summary.usage)
        return cls(new_id("resp"), int(time.time()), messages, item, usage.model())

    def to_wire(self) -> dict[str, Any]:
        output = [*self.messages, self.item]
        return {
            "id": self.id,
            "object": "response.compaction",
            "created_at": self.created_at,
            "output": [wire_item(i.model_dump(mode="json", by_alias=True)) for i in output],
            "usage": self.usage.model_dump(mode="json"),
        }


def _user_item(content: str | list[dict[str, Any]]) -> ResponseInputMessageItem:
    return ResponseInputMessageItem.model_validate(
        {
            "id": new_id("msg"),
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": input_parts(content),
        }
    )
