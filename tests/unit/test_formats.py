"""Every tool-call format vLLM ships, through stock vLLM's chat completions and through the plugin.

The same model output (written by hand in each family's syntax, ``tests/support/formats.py``) is
played token by token by a scripted engine into (a) vLLM's own `OpenAIServingChat` stream and
full generators with a function tool, and (b) the plugin's chat-template turn with an MCP tool of
the same schema (``tests/support/stock_chat.py``). Stock vLLM is the oracle: the plugin's parsed
turn must equal stock's streamed turn exactly (calls, text, reasoning), and its calls must equal
stock's non-streamed calls (the plugin's non-streaming response is its drained stream). Where
they differ, `EXPECTED` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from mcp import types
from vllm.tool_parsers import ToolParserManager

from tests.support import stock_chat
from tests.support.formats import BY_NAME, FAMILIES, Call, Family, model_output

WEATHER = types.Tool(
    name="get_weather",
    description="The weather forecast for a city.",
    input_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
TIME = types.Tool(
    name="get_time",
    description="The time in a zone.",
    input_schema={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
)
TOOLS = [WEATHER, TIME]

ONE: list[Call] = [("get_weather", {"city": "Paris", "days": 3})]
TWO: list[Call] = [*ONE, ("get_time", {"zone": "CET"})]

# case -> (calls, text before, text after, reasoning)
CASES: dict[str, tuple[list[Call], str, str, str]] = {
    "one call": (ONE, "", "", ""),
    "text around the call": (ONE, "Let me check. ", " Done.", ""),
    "two calls": (TWO, "", "", ""),
    "reasoning first": (ONE, "", "", "The user wants the weather."),
}

_STREAM_SPLIT = (
    "stock streams it otherwise than it parses it whole; the plugin streams it as stock streams it"
)
# (family, case) -> why the plugin's calls are not those of stock's non-streaming parse.
EXPECTED: dict[tuple[str, str], str] = {
    **{
        (family, "text around the call"): _STREAM_SPLIT + " (text before the call: no call when streamed)"
        for family in ("llama3_json", "llama4_json", "olmo3", "granite-20b-fc", "hunyuan_a13b")
    },
    **{
        ("jamba", case): _STREAM_SPLIT + " (vLLM's streamed arguments are corrupted: stock and plugin alike)"
        for case in ("one call", "text around the call", "two calls")
    },
    **{
        ("functiongemma", case): _STREAM_SPLIT + " (vLLM streams a two-parameter call's arguments corrupted)"
        for case in ("one call", "text around the call", "two calls")
    },
    ("gigachat3", "text around the call"): _STREAM_SPLIT
    + " (the format has one call ending the message: text after it streams into the arguments)",
    ("gigachat3", "two calls"): _STREAM_SPLIT
    + " (one call per message: the second streams into the first's arguments)",
}
# (family, case) -> why the plugin's turn is not stock's streamed turn: stock's stream loses
# calls that its non-streaming parse finds; the plugin, having streamed nothing, falls back to
# that parse at the end of the turn (`ChatTemplateParser.close`).
STREAM_LOSES_CALLS: dict[tuple[str, str], str] = {
    ("phi4_mini_json", case): "vLLM's phi4_mini_json parser streams nothing at all (no content, no call)"
    for case in ("one call", "text around the call", "two calls")
}
# (family, case) -> why stock vLLM fails on the output; the plugin must fail too.
STOCK_FAILS: dict[tuple[str, str], str] = {
    ("internlm", "two calls"): "vLLM's internlm parser raises on a second <|action_start|><|plugin|> block",
}
# Cases whose output is not a call in the family's format (text around a bare array or
# call list): stock parses no call, and neither does the plugin.
NOT_A_CALL = {
    ("pythonic", "text around the call"),
    ("llama4_pythonic", "text around the call"),
    ("xlam", "text around the call"),
}

# Registered tool parsers not in the matrix, and why.
NOT_HERE: dict[str, str] = {
    "openai": "gpt-oss's harmony format: the plugin renders and parses it with openai_harmony "
    "(engine/harmony, tests/unit/test_harmony_*.py), not with a tool parser",
    "hf": "the response-template parser reads the model's own chat template; it needs a model's "
    "template with a response schema, not a family syntax",
}


def _matrix() -> Iterator[Any]:
    for family in FAMILIES:
        for case, (_, _, _, reasoning) in CASES.items():
            if reasoning and family.reasoning_parser is None:
                continue
            yield pytest.param(family, case, id=f"{family.name}-{case.replace(' ', '_')}")


@pytest.fixture(autouse=True)
def _quiet_parsers() -> Iterator[None]:
    """Parsers log a traceback for output they give up on (the oracle's own business)."""
    logging.getLogger("vllm").disabled = True
    yield
    logging.getLogger("vllm").disabled = False


def _setup(family: Family, case: str) -> tuple[Any, str]:
    calls, before, after, reasoning = CASES[case]
    parser_cls = stock_chat.parser_class(family, reasoning=bool(reasoning))
    return stock_chat.serving_chat(family, parser_cls), model_output(family, calls, before, after, reasoning)


@pytest.mark.parametrize(("family", "case"), list(_matrix()))
async def test_the_plugin_parses_each_format_as_stock_chat_completions(family: Family, case: str) -> None:
    chat, text = _setup(family, case)
    plugin = stock_chat.ScriptedChat(chat, family, text)
    turn = stock_chat.mcp_turn(TOOLS)
    if (family.name, case) in STOCK_FAILS:
        with pytest.raises(ValueError):
            await stock_chat.stock_full(
                chat, family, stock_chat.stock_request(chat, TOOLS, stream=False), text
            )
        with pytest.raises(ValueError):
            await stock_chat.plugin_turn(plugin, turn)
        return
    streamed = await stock_chat.stock_stream(chat, family, stock_chat.stock_request(chat, TOOLS), text)
    whole = await stock_chat.stock_full(
        chat, family, stock_chat.stock_request(chat, TOOLS, stream=False), text
    )
    ours, _ = await stock_chat.plugin_turn(plugin, turn)

    if (family.name, case) in EXPECTED:
        assert ours == streamed
        assert ours.parsed_calls != whole.parsed_calls, "no longer differs: drop it from EXPECTED"
        return
    assert ours.parsed_calls == whole.parsed_calls
    if (family.name, case) in STREAM_LOSES_CALLS:
        assert streamed.calls == [], "stock streams the calls now: drop it from STREAM_LOSES_CALLS"
    else:
        assert ours == streamed
    expected_calls = [] if (family.name, case) in NOT_A_CALL else CASES[case][0]
    assert whole.parsed_calls == [(name, args) for name, args in expected_calls], (
        "the family's syntax as written"
    )


def test_every_registered_tool_parser_is_in_the_matrix_or_says_why_not() -> None:
    registered = set(ToolParserManager.list_registered())
    covered = set(BY_NAME) | set(NOT_HERE) | set(NOT_YET)
    assert registered - covered == set()
    assert covered - registered == set()


# Registered parsers whose syntax is not written here yet (all construct with a byte tokenizer).
NOT_YET: dict[str, str] = {
    name: "syntax not written yet"
    for name in (
        "cohere_command3",
        "cohere_command4",
        "ernie45",
        "gemma4",
        "hy_v3",
        "hy_v4",
        "inkling",
        "k2_horizon",
        "kimi_k3",
        "minicpm5",
        "muse_glimmer",
        "plamo3",
    )
}
