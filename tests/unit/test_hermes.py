"""The incremental hermes parser gives exactly the parts vLLM's hermes parser gives, delta for
delta, on every split of the scripted outputs and of long, unicode, escaped and malformed calls;
and so the same items and events."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest

from tests.support.scripts import all_samples
from tests.support.tiny_model import build_tiny_model
from vllm_mcp_ext._compat import ChatCompletionRequest
from vllm_mcp_ext.engine.hermes import IncrementalHermes
from vllm_mcp_ext.engine.parser import ChatTemplateParser
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.loop.toolset import ToolSet
from vllm_mcp_ext.loop.turn import TurnBuilder
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta
from vllm_mcp_ext.types.request import ResponsesRequest

FUNCTION = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
PROMPT_IDS = [1, 2, 3]


@cache
def _tokenizer() -> Any:
    from vllm.tokenizers import get_tokenizer

    return get_tokenizer(str(build_tiny_model()))


@cache
def _parser_cls(reasoning: str | None) -> Any:
    from vllm.parser.parser_manager import ParserManager

    return ParserManager.get_parser(
        tool_parser_name="hermes",
        reasoning_parser_name=reasoning,
        enable_auto_tools=True,
        tokenizer=_tokenizer(),
    )


def _request(tool_choice: str = "auto") -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        tools=[FUNCTION],
        tool_choice=tool_choice,
        stream=True,
    )  # type: ignore[list-item, arg-type]


def _parse(
    pieces: Sequence[tuple[str, list[int]]], incremental: bool, reasoning: str | None, tool_choice: str
) -> tuple[list[list[Part]], bool]:
    request = _request(tool_choice)
    vllm_parser = _parser_cls(reasoning)(
        _tokenizer(), request.tools, chat_template_kwargs={}, model_config=None
    )
    parser = ChatTemplateParser(vllm_parser, request, incremental=incremental)
    last = len(pieces) - 1
    out = [parser.feed(text, ids, PROMPT_IDS, i == last) for i, (text, ids) in enumerate(pieces)]
    out.append(parser.close())
    return out, parser.incremental


def assert_same(
    pieces: Sequence[tuple[str, list[int]] | str],
    reasoning: str | None = None,
    tool_choice: str = "auto",
    engaged: bool = True,
) -> list[list[Part]]:
    """Both parsers, fed the same deltas, give the same parts per delta; returns them."""
    deltas = [(p, [0]) if isinstance(p, str) else p for p in pieces]
    ours, took_over = _parse(deltas, True, reasoning, tool_choice)
    theirs, _ = _parse(deltas, False, reasoning, tool_choice)
    assert ours == theirs, [text for text, _ in deltas]
    if engaged and len(deltas) > 2:
        assert took_over
    return ours


def by_chars(text: str) -> list[str]:
    return list(text)


def two_splits(text: str) -> list[list[str]]:
    return [[text[:i], text[i:]] for i in range(1, len(text))]


def random_splits(text: str, seed: int, most: int = 12) -> list[str]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, most)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def tokens(text: str) -> list[tuple[str, list[int]]]:
    tokenizer = _tokenizer()
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces = []
    for n in range(1, len(ids) + 1):  # incremental detokenization, as the engine does
        window = ids[max(n - 8, 0) : n]
        piece = tokenizer.decode(window)[len(tokenizer.decode(window[:-1])) :]
        pieces.append((piece, [ids[n - 1]]))
    assert "".join(p for p, _ in pieces) == text
    return pieces


def call(name: str, arguments: Any, raw: str | None = None) -> str:
    body = raw if raw is not None else json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


# -- the scripted outputs ------------------------------------------------------------------

SAMPLES = {f"{s.script}-{s.turn}": s.completion for s in all_samples()}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_two_way_split_and_every_character_of_a_scripted_output(name: str) -> None:
    text = SAMPLES[name]
    for pieces in [by_chars(text), *two_splits(text)]:
        assert_same(pieces)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_scripted_outputs_token_by_token_with_and_without_the_reasoning_parser(name: str) -> None:
    text = SAMPLES[name]
    pieces = tokens(text)
    assert_same(pieces)
    assert_same(pieces, reasoning="qwen3", engaged="<think>" in text and "<tool_call>" in text)
    for cut in range(1, len(pieces)):  # two deltas, at every token boundary
        merged = [
            ("".join(t for t, _ in part), [i for _, ids in part for i in ids])
            for part in (pieces[:cut], pieces[cut:])
        ]
        assert_same(merged, reasoning="qwen3")


# -- long, unicode, escaped and malformed calls --------------------------------------------

LONG = " ".join(f"w{i % 97}" for i in range(1000))
TRICKY = [
    call("f", {"text": LONG}),
    call("f", {"text": "héllo wörld 🚀🚀 中文 \u0301 \u3000 tab\tnew\nline"}),
    call("f", {"code": 'print("a \\"quoted\\" b")\n}}{{ [ ] \\\\ \\u0041', "n": [1, {"x": "}"}]}),
    call("f", {"html": "<div>a</div> <tool_ </tool_callx> <tool_call> <"}),
    "Let me check. " + call("f", {"a": 1}) + " between " + call("g", {"b": [1, 2]}) + " after",
    "partial tag at the end <tool_",
    "no calls at all, just text with a < and <tool but no tag",
    call("f", None, raw='{"arguments": {"name": "inner", "x": 1}, "name": "f"}'),
    call("f", None, raw='{"name": "f"}'),
    call("f", None, raw='{"name": "f", "arguments": {}}'),
    call("f", None, raw='{"name":"f","arguments":{"a":{"b":{}}}}   '),
    call("f", None, raw='{"name": "f", "arguments": {"a": tru}}'),
    call("f", None, raw='{"name": "f", "arguments": {"a": 1}} trailing'),
    call("f", None, raw='[{"name": "f", "arguments": {"a": 1}}]'),
    call("f", None, raw='"just a string"'),
    call("f", None, raw=""),
    call("f", None, raw='{"name": "f", "arguments": "not an object"}'),
    call("f", None, raw='{"name": "f", "arguments": {"t": "a</tool_call>b"}}'),
    call("f", None, raw='{"nam": "x"}') + call("g", {"a": 1}),
    '<tool_call>\n{"name": "f", "arguments": {"a": "open call, never closed',
    '<tool_call>\n{"name": "f", "arguments": {"a": 1}}',
    '<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call><tool_call>{"name": "g", "arguments": {}}</tool_call>',
    call("f", None, raw='{"name" :  "f" ,  "arguments"  :   \n {"a" : 1 }  }'),
    call("f", None, raw='{"name": "f", "arguments": {"a": "\\u00e9\\ud83d\\ude80"}}'),
    call("f", None, raw='{"name": "f", "arguments": {"x": "\x1c"}\x1c}\x1c'),
    call("f", {"a": "ends with a backslash \\"}),
    "\n\n" + call("f", {"a": 1}) + "\n\n",
]


@pytest.mark.parametrize("index", range(len(TRICKY)))
def test_tricky_calls_split_every_way(index: int) -> None:
    text = TRICKY[index]
    assert_same(by_chars(text))
    splits = two_splits(text) if len(text) < 400 else two_splits(text)[::97]
    for pieces in splits:
        assert_same(pieces)
    for seed in range(8):
        assert_same(random_splits(text, seed))


def test_three_way_splits_around_the_tags() -> None:
    text = "ok <tool_call>\n" + '{"name": "f", "arguments": {"a": "<"}}' + "\n</tool_call> x <tool_call>{}"
    for i in range(1, len(text) - 1):
        for j in range(i + 1, len(text)):
            assert_same([text[:i], text[i:j], text[j:]])


def test_tool_choice_none_passes_text_through() -> None:
    assert_same(by_chars("plain <tool_call>{}</tool_call> text"), tool_choice="none")


def test_a_long_argument_streams_whole_and_in_order() -> None:
    parts = assert_same(tokens(call("f", {"text": LONG})))
    pieces = [p for delta in parts for p in delta]
    assert pieces[0] == ToolCallDelta(0, "f", "")
    assert "".join(p.arguments for p in pieces if isinstance(p, ToolCallDelta)) == json.dumps({"text": LONG})


def test_a_call_without_arguments_gets_the_empty_object_vllm_appends_at_the_end() -> None:
    parts = assert_same(["<tool_call>", '{"name": "f"}</tool_call>'], engaged=False)
    assert parts[-2] == [ToolCallDelta(0, "f", "{}")]


def test_fed_whole_it_reads_text_before_the_call_as_content() -> None:
    delta = IncrementalHermes().feed('Hi <tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>')
    assert delta.content == "Hi "
    assert delta.calls == [(0, "f", ""), (0, None, '{"a": 1}')]


# -- items and events ----------------------------------------------------------------------


def _events(pieces: Sequence[tuple[str, list[int]]], incremental: bool) -> list[dict[str, Any]]:
    request = _request()
    vllm_parser = _parser_cls(None)(_tokenizer(), request.tools, chat_template_kwargs={}, model_config=None)
    parser = ChatTemplateParser(vllm_parser, request, incremental=incremental)
    stream = ResponseStream(ResponsesRequest(id="resp_1", model="m"))
    builder = TurnBuilder(stream, ToolSet.build([]), {"f", "g"}, "")
    last = len(pieces) - 1
    for i, (text, ids) in enumerate(pieces):
        for part in parser.feed(text, ids, PROMPT_IDS, i == last):
            builder.feed(part)
    for part in parser.close():
        builder.feed(part)
    builder.close()
    events = [event.model_dump(mode="json") for event in stream.take()]
    return [_without_ids(event) for event in events]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_ids(v)
            for k, v in value.items()
            if k not in ("id", "item_id", "call_id", "created_at")
        }
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


@pytest.mark.parametrize(
    "text", [TRICKY[4], call("f", {"text": LONG[:3000]}), TRICKY[2], "Hello " + TRICKY[21]], ids=range(4)
)
def test_the_same_items_and_events_token_by_token(text: str) -> None:
    pieces = tokens(text)
    ours, theirs = _events(pieces, True), _events(pieces, False)
    assert ours == theirs
    assert any(event["type"] == "response.function_call_arguments.done" for event in ours)
    assert isinstance(_parse(pieces, True, None, "auto")[0][-1], list)


def test_text_only_turns_keep_their_text() -> None:
    parts = assert_same(by_chars("just an answer"))
    assert "".join(p.text for delta in parts for p in delta if isinstance(p, TextDelta)) == "just an answer"
