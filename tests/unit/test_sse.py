"""The per-token events take pydantic's JSON encoder instead of the dict route: what a client
parses must be the same event, for any text a model can write."""

from __future__ import annotations

import json
import random

import pytest
from openai.types.responses import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseTextDeltaEvent,
)

from vllm_mcp_ext.events.sse import encode, encode_wire
from vllm_mcp_ext.events.stream import _text_logprob
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.types.parts import TokenLogprob

TEXTS = [
    " hello",
    'quote " backslash \\ slash / tab \t newline \n cr \r nul \x00 bell \x07 del \x7f',
    "é ü ß 中文 日本語 😀 \u2028 \u2029 \ufeff \ufffd",
    '{"code": "fn main() {\\n}"}',
    "",
]


def _events(text: str) -> list[object]:
    ids = {"item_id": "msg_1", "output_index": 2, "sequence_number": 7}
    logprob = _text_logprob(TokenLogprob(text or "x", -0.000012345, ((text or "x", -1e-05), ("y", -9999.0))))
    return [
        ResponseTextDeltaEvent(
            type="response.output_text.delta", content_index=0, delta=text, logprobs=[logprob], **ids
        ),
        ResponseTextDeltaEvent(
            type="response.output_text.delta", content_index=0, delta=text, logprobs=[], **ids
        ),
        ResponseReasoningTextDeltaEvent(
            type="response.reasoning_text.delta", content_index=0, delta=text, **ids
        ),
        ResponseMcpCallArgumentsDeltaEvent(type="response.mcp_call_arguments.delta", delta=text, **ids),
        ResponseFunctionCallArgumentsDeltaEvent(
            type="response.function_call_arguments.delta", delta=text, **ids
        ),
    ]


def _data(sse: str) -> object:
    head, data = sse.split("\ndata: ", 1)
    assert head.startswith("event: ") and data.endswith("\n\n")
    return json.loads(data)


@pytest.mark.parametrize("text", TEXTS)
def test_per_token_events_encode_to_the_same_json(text: str) -> None:
    for event in _events(text):
        fast, slow = encode(event), encode_wire(to_wire(event))  # type: ignore[arg-type]
        assert fast.split("\n", 1)[0] == slow.split("\n", 1)[0]
        assert _data(fast) == _data(slow)
        assert fast.isascii()  # as json.dumps writes it


def test_random_text_is_the_same_json_and_byte_identical_apart_from_del() -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in (*range(0, 0x80), 0xE9, 0x4E2D, 0x1F600, 0x2028, 0xFFFD)]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        for event in _events(text):
            fast, slow = encode(event), encode_wire(to_wire(event))  # type: ignore[arg-type]
            assert _data(fast) == _data(slow)
            if "\x7f" not in text and not getattr(event, "logprobs", None):
                assert fast == slow  # pydantic writes DEL as \u007f; floats may print differently
