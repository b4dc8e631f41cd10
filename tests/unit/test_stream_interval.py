"""vLLM's stream interval (``--stream-interval``, or a request's ``stream_interval``) makes the
engine hand over several tokens per delta. The plugin's parser then gets coalesced deltas: every
tool call's name and arguments must come out whole and in order, whatever the interval, as with
one token per delta (vLLM's own streaming chat path is known to lose argument text there)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scripts import resolved_scripts
from tests.unit.test_hermes import _parse, tokens
from vllm_mcp_ext.chat.request import chat_request
from vllm_mcp_ext.engine.chat_template import _chat_request
from vllm_mcp_ext.responses.engine_options import engine_options
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta, TurnRequest

MCP = {"type": "mcp", "server_label": "calc", "require_approval": "never"}

INTERVALS = (1, 2, 3, 4, 8, 16, 1000)  # 1000: the whole turn in one delta


def coalesced(pieces: list[tuple[str, list[int]]], interval: int) -> list[tuple[str, list[int]]]:
    """The engine's deltas at ``interval``: the first token alone, then ``interval`` at a time
    (vLLM's output processor), the last delta whatever is left."""
    out = [pieces[0]]
    rest = pieces[1:]
    for i in range(0, len(rest), interval):
        group = rest[i : i + interval]
        out.append(("".join(t for t, _ in group), [n for _, ids in group for n in ids]))
    return out


def assembled(parts: list[list[Part]]) -> tuple[str, list[tuple[str | None, str]]]:
    """The text, and each call's name and arguments, as the loop assembles the deltas."""
    text = ""
    calls: dict[int, list[Any]] = {}
    for part in (p for delta in parts for p in delta):
        if isinstance(part, TextDelta):
            text += part.text
        elif isinstance(part, ToolCallDelta):
            call = calls.setdefault(part.index, [None, ""])
            call[0] = call[0] or part.name
            call[1] += part.arguments
    return text, [(name, arguments) for _, (name, arguments) in sorted(calls.items())]


CALL_TURNS = {
    f"{name}-{t}": (resolved.script, turn)
    for name, resolved in resolved_scripts().items()
    for t, turn in enumerate(resolved.script.turns)
    if not isinstance(turn, str)
}


@pytest.mark.parametrize("name", sorted(CALL_TURNS))
def test_every_interval_gives_every_call_whole_and_in_order(name: str) -> None:
    script, turn = CALL_TURNS[name]
    text = "\n".join(call.text() for call in turn)
    reasoning = "qwen3" if script.reasoning else None
    if reasoning:
        text = f"<think>\n{script.reasoning[script.turns.index(turn)]}\n</think>\n\n{text}"
    expected = [(call.name, call.arguments_json) for call in turn]
    pieces = tokens(text)
    for interval in INTERVALS:
        parts, _ = _parse(coalesced(pieces, interval), True, reasoning, "auto")
        content, calls = assembled(parts)
        assert calls == expected, interval
        assert not content.strip(), interval


def test_a_request_s_stream_interval_goes_to_the_engine_with_vllm_s_bound() -> None:
    assert engine_options({"stream_interval": 8}) == {"stream_interval": 8}
    with pytest.raises(Exception, match="stream_interval"):
        engine_options({"stream_interval": 0})


def test_the_chat_door_passes_stream_interval_to_every_turn_s_sampling_params() -> None:
    body = chat_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [MCP], "stream_interval": 4}
    ).body
    options = engine_options(body)
    turn = TurnRequest("r", [{"role": "user", "content": "hi"}], [], "none", 16, engine_options=options)
    sampling = _chat_request("m", turn).to_sampling_params(16, {})
    assert sampling.stream_interval == 4
