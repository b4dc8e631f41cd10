"""`ResponsesParser` for chat-template models, without a model: what reaches the loop."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from vllm_mcp_ext import ResponsesParser
from vllm_mcp_ext.engine.parser import ChatTemplateParser
from vllm_mcp_ext.types.parts import ReasoningDelta, TextDelta, ToolCallDelta


class HoldsEverything:
    """A tool parser that keeps every delta back (a `<tool_call>` it cannot read, say)."""

    def parse_delta(self, **_: Any) -> None:
        return None

    def count_reasoning_tokens(self, ids: list[int]) -> int:
        return 0


class Splits:
    def parse_delta(self, *, delta_text: str, **_: Any) -> Any:
        call = SimpleNamespace(index=0, function=SimpleNamespace(name="add", arguments="{}"))
        return SimpleNamespace(reasoning="r", content=delta_text, tool_calls=[call])

    def count_reasoning_tokens(self, ids: list[int]) -> int:
        return len(ids) - 1


def test_without_a_parser_every_delta_is_text() -> None:
    parser = ChatTemplateParser(None, request=None)
    assert isinstance(parser, ResponsesParser)
    assert parser.feed("Hi", [1], [0], False) + parser.feed("", [2], [0], True) == [TextDelta("Hi")]
    assert parser.close() == [] and parser.reasoning_tokens([1, 2]) == 0


def test_a_turn_the_parser_made_nothing_of_is_kept_as_text() -> None:
    parser = ChatTemplateParser(HoldsEverything(), request=None)
    assert parser.feed("<tool_call>{bad", [1], [0], False) == []
    assert parser.feed("</tool_call>", [2], [0], True) == []
    assert parser.close() == [TextDelta("<tool_call>{bad</tool_call>")]


def test_parsed_deltas_become_reasoning_text_and_call_parts_in_that_order() -> None:
    parser = ChatTemplateParser(Splits(), request=None)
    assert parser.feed("5", [1], [0], False) == [
        ReasoningDelta("r"),
        TextDelta("5"),
        ToolCallDelta(0, "add", "{}"),
    ]
    assert parser.close() == [] and parser.reasoning_tokens([1, 2, 3]) == 2


def test_calls_a_stream_found_nothing_of_come_from_the_whole_turn_parse() -> None:
    seen: list[str] = []

    def whole(text: str) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        seen.append(text)
        return "hm", " ", [("add", '{"a": 1}'), ("sub", "{}")]

    parser = ChatTemplateParser(HoldsEverything(), request=None, whole=whole)
    parser.feed('[{"name": "add"', [1], [0], False)
    parser.feed("}]", [2], [0], True)
    assert parser.close() == [
        ReasoningDelta("hm"),
        ToolCallDelta(0, "add", '{"a": 1}'),
        ToolCallDelta(1, "sub", "{}"),
    ]
    assert seen == ['[{"name": "add"}]']


def test_a_whole_turn_parse_without_calls_leaves_the_text_as_it_was() -> None:
    parser = ChatTemplateParser(HoldsEverything(), request=None, whole=lambda text: (None, None, []))
    parser.feed("<tool_call>{bad", [1], [0], True)
    assert parser.close() == [TextDelta("<tool_call>{bad")]


def test_a_stream_that_parsed_something_is_not_parsed_again() -> None:
    parser = ChatTemplateParser(Splits(), request=None, whole=lambda text: ("x", "y", [("z", "{}")]))
    parser.feed("5", [1], [0], True)
    assert parser.close() == []


def test_a_whole_turn_parse_that_fails_leaves_the_text_as_it_was() -> None:
    def whole(text: str) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        raise ValueError("too many values to unpack")

    parser = ChatTemplateParser(HoldsEverything(), request=None, whole=whole)
    parser.feed("<|action_start|>", [1], [0], True)
    assert parser.close() == [TextDelta("<|action_start|>")]
