"""The per-token events built and written without pydantic (`events.deltas`) are the SDK's own
events: equal to the validated ones, and written byte for byte as pydantic writes them."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseTextDeltaEvent,
)
from pydantic import BaseModel

from vllm_mcp_ext.events.deltas import FAST, delta_event, delta_json
from vllm_mcp_ext.events.sse import encode, to_json
from vllm_mcp_ext.events.wire import to_wire

# What a model writes: plain words, JSON arguments, every escape JSON has, and beyond ASCII
DELTAS = [
    " word",
    "",
    '{"city": "Paris", "note": "a \\"quoted\\" word"}',
    "back\\slash / slash",
    "an escape written out: \\u007f, and the character: \x7f",
    "line\nbreak\ttab\rreturn\x08\x0c",
    "".join(chr(c) for c in range(0x20)) + "\x7f",
    "caf\u00e9 na\u00efve \u00fc\u00df",
    "\u4f60\u597d\u4e16\u754c \u3053\u3093\u306b\u3061\u306f",
    "emoji \U0001f600 and \U0001f9e0 astral",
    "separators \u2028 \u2029 and \ufffd replacement and \ufeff bom",
    "<tool_call>",
    "</tool_call>\n",
]

KINDS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (
        ResponseTextDeltaEvent,
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 3, "content_index": 0,
         "logprobs": []},
    ),
    (
        ResponseReasoningTextDeltaEvent,
        {"type": "response.reasoning_text.delta", "item_id": "rs_9", "output_index": 0, "content_index": 0},
    ),
    (
        ResponseMcpCallArgumentsDeltaEvent,
        {"type": "response.mcp_call_arguments.delta", "item_id": "mcp_\u00e9", "output_index": 12},
    ),
    (
        ResponseFunctionCallArgumentsDeltaEvent,
        {"type": "response.function_call_arguments.delta", "item_id": "fc_2", "output_index": 1},
    ),
]  # fmt: skip


def test_every_delta_event_of_this_sdk_takes_the_fast_path() -> None:
    assert {cls for cls, _ in KINDS} == FAST


@pytest.mark.parametrize("cls,fields", KINDS, ids=[cls.__name__ for cls, _ in KINDS])
@pytest.mark.parametrize("delta", DELTAS)
def test_a_fast_delta_event_is_the_validated_event_and_writes_its_json(
    cls: type[BaseModel], fields: dict[str, Any], delta: str
) -> None:
    validated = cls(sequence_number=41, delta=delta, **fields)
    fast = delta_event(cls, sequence_number=41, delta=delta, **fields)
    assert type(fast) is cls
    assert fast == validated
    assert fast.model_dump() == validated.model_dump()
    assert to_wire(fast) == to_wire(validated)
    pydantic_json = validated.model_dump_json(by_alias=True, ensure_ascii=True)
    assert delta_json(fast) == pydantic_json
    assert to_json(fast) == pydantic_json
    assert encode(fast) == f"event: {fields['type']}\ndata: {pydantic_json}\n\n"  # type: ignore[arg-type]


def test_every_character_is_written_as_pydantic_writes_it() -> None:
    points = [c for c in range(0x3100) if not 0xD800 <= c <= 0xDFFF] + list(range(0xFE00, 0x10000))
    points += [*range(0x1F300, 0x1F700), 0x10FFFF]
    for start in range(0, len(points), 512):
        text = "".join(chr(c) for c in points[start : start + 512])
        fields = dict(KINDS[2][1], delta=text, sequence_number=start)
        validated = ResponseMcpCallArgumentsDeltaEvent(**fields)
        assert delta_json(
            delta_event(ResponseMcpCallArgumentsDeltaEvent, **fields)
        ) == validated.model_dump_json(by_alias=True, ensure_ascii=True)


def test_a_text_delta_with_logprobs_is_written_by_pydantic() -> None:
    lp = {"token": "hi", "bytes": [104, 105], "logprob": -0.25, "top_logprobs": []}
    event = ResponseTextDeltaEvent(
        type="response.output_text.delta", item_id="msg_1", output_index=0, content_index=0,
        delta="hi", logprobs=[lp], sequence_number=2,
    )  # fmt: skip
    assert delta_json(event) is None
    assert to_json(event) == event.model_dump_json(by_alias=True, ensure_ascii=True)
    assert '"logprobs":[{"token":"hi"' in to_json(event)


def test_an_event_with_a_field_the_fast_path_does_not_know_is_made_and_written_by_pydantic() -> None:
    class Newer(ResponseTextDeltaEvent):  # as if the SDK added a field
        obfuscation: str | None = None

    fields = dict(KINDS[0][1], delta="x", sequence_number=0)
    event = delta_event(Newer, **fields)
    assert event.obfuscation is None  # validated: the default is there
    assert delta_json(event) is None
    with pytest.raises(ValueError):
        delta_event(Newer, **{**fields, "output_index": "not a number"})


def test_deltas_of_items_written_side_by_side_each_keep_their_own_fields() -> None:
    for seq in range(40):
        cls, fields = KINDS[seq % len(KINDS)]
        fields = {**fields, "item_id": f"item_{seq % 3}", "output_index": seq % 5}
        event = delta_event(cls, sequence_number=seq, delta=DELTAS[seq % len(DELTAS)], **fields)
        validated = cls(sequence_number=seq, delta=DELTAS[seq % len(DELTAS)], **fields)
        assert delta_json(event) == validated.model_dump_json(by_alias=True, ensure_ascii=True)
