"""`HarmonyParser` on real gpt-oss token ids (openai-harmony's encoding): channels become parts,
a tool call streams its name then its arguments, however the ids are split into deltas."""

from __future__ import annotations

from tests.support.harmony import analysis, call, final, output_ids
from vllm_mcp_ext.engine.harmony.parser import HarmonyParser
from vllm_mcp_ext.engine.harmony.render import ToolNames, encode_special
from vllm_mcp_ext.types.parts import Part, ReasoningDelta, TextDelta, ToolCallDelta

ARGS = '{"q": "café ☕ 東京", "n": 2}'
TOOLS = [
    {"type": "function", "function": {"name": "search", "description": "Search.", "parameters": {}}},
    {"type": "function", "function": {"name": "lookup", "description": "Client's.", "parameters": {}}},
]
NAMES = ToolNames.build(TOOLS, {"search": ("docs", "search")})
TURN = output_ids(analysis("Need to search."), call("docs.search", ARGS))


def summary(parts: list[Part]) -> tuple[str, str, list[tuple[int, str | None, str]]]:
    """Reasoning text, message text, and each call's (index, name, whole arguments)."""
    reasoning = "".join(p.text for p in parts if isinstance(p, ReasoningDelta))
    text = "".join(p.text for p in parts if isinstance(p, TextDelta))
    calls: dict[int, list[str]] = {}
    names: dict[int, str | None] = {}
    for p in parts:
        if isinstance(p, ToolCallDelta):
            if p.name is not None:
                assert p.index not in names, "a call's name comes once, first"
                names[p.index] = p.name
            else:
                assert p.index in names, "arguments come after the call's name"
            calls.setdefault(p.index, []).append(p.arguments)
    return reasoning, text, [(i, names[i], "".join(calls[i])) for i in sorted(calls)]


def test_harmony_channels_become_reasoning_a_call_and_text() -> None:
    parser = HarmonyParser(NAMES)
    parts = parser.feed_ids(TURN) + parser.close()
    assert summary(parts) == ("Need to search.", "", [(0, "search", ARGS)])
    assert 0 < parser.reasoning_tokens(TURN) < len(TURN)

    answer = output_ids(analysis("Found it."), final("Two results."))
    assert summary(HarmonyParser(NAMES).feed_ids(answer)) == ("Found it.", "Two results.", [])


def test_harmony_call_split_at_every_token_parses_the_same() -> None:
    whole = summary(HarmonyParser(NAMES).feed_ids(TURN))
    for cut in range(len(TURN) + 1):
        parser = HarmonyParser(NAMES)
        parts = parser.feed_ids(TURN[:cut]) + parser.feed_ids(TURN[cut:])
        assert summary(parts) == whole, f"split after token {cut}"
    parser = HarmonyParser(NAMES)
    one_by_one = [part for token in TURN for part in parser.feed_ids([token])]
    assert summary(one_by_one) == whole


def test_harmony_arguments_split_inside_a_character_never_show_half_of_it() -> None:
    # "☕" and "東京" take more than one token each in o200k_harmony: the deltas of the tokens
    # that hold only part of a character's bytes show nothing until it is whole.
    parser = HarmonyParser(NAMES)
    deltas = [p.arguments for token in TURN for p in parser.feed_ids([token]) if isinstance(p, ToolCallDelta)]
    assert "".join(deltas) == ARGS
    assert all("\ufffd" not in d for d in deltas)
    assert any(d == "" for d in deltas[1:]) or len(deltas) - 1 < len(ARGS.encode())


def test_harmony_call_name_is_known_before_its_arguments_arrive() -> None:
    header_end = TURN.index(encode_special("<|message|>")[0], TURN.index(encode_special("<|constrain|>")[0]))
    parts = HarmonyParser(NAMES).feed_ids(TURN[: header_end + 1])
    calls = [p for p in parts if isinstance(p, ToolCallDelta)]
    assert calls == [ToolCallDelta(0, name="search")]


def test_harmony_function_namespace_and_unknown_recipients() -> None:
    turn = output_ids(call("functions.lookup", "{}"))
    assert summary(HarmonyParser(NAMES).feed_ids(turn))[2] == [(0, "lookup", "{}")]
    turn = output_ids(call("weather.today", "{}"))
    assert summary(HarmonyParser(NAMES).feed_ids(turn))[2] == [(0, "weather.today", "{}")]


def test_harmony_forced_header_is_parsed_before_the_model_writes() -> None:
    forced = encode_special("<|channel|>commentary to=docs.search <|constrain|>json<|message|>")
    parser = HarmonyParser(NAMES, forced)
    generated = output_ids(call("docs.search", ARGS), drop=len(forced))
    assert summary(parser.feed_ids(generated)) == ("", "", [(0, "search", ARGS)])


def test_harmony_output_outside_the_format_is_text_not_lost() -> None:
    parser = HarmonyParser(NAMES)
    parts = parser.feed_ids(encode_special("plain words")) + parser.close()
    assert "".join(p.text for p in parts if isinstance(p, TextDelta)) == "plain words"


def test_harmony_parsing_a_long_turn_stays_linear() -> None:
    # 20,000 tokens streamed one by one: microseconds each (asking openai-harmony for its state
    # at each token took milliseconds at this length, growing with the message)
    import time

    turn = output_ids(analysis("word " * 20_000))
    parser = HarmonyParser(NAMES)
    start = time.perf_counter()
    parts = [part for token in turn for part in parser.feed_ids([token])]
    assert time.perf_counter() - start < 5
    assert summary(parts)[0] == "word " * 20_000
