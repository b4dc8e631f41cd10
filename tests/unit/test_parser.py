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
