"""Anthropic's context editing in the loop (loop/context_edits.py): which tool results and which
reasoning go, when, and what is reported."""

from __future__ import annotations

from typing import Any

from vllm_mcp_ext.loop.context_edits import (
    CLEARED,
    AppliedEdits,
    ClearThinking,
    ClearToolUses,
    ContextEdits,
    apply,
)


def words(text: str) -> int:
    return len(text.split())


def conversation(calls: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    for i in range(calls):
        name = "search" if i == 0 else "add"
        call = {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": '{"a": 1}'}}
        messages += [
            {"role": "assistant", "content": "", "reasoning": f"step {i}", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": f"result number {i}"},
        ]
    return messages


def results(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "tool"]


def test_tool_uses_past_the_trigger_are_cleared_but_the_newest_and_the_excluded() -> None:
    messages, applied = conversation(5), AppliedEdits()
    edits = ContextEdits(ClearToolUses(trigger=100, keep=2, exclude=frozenset({"search"})))
    assert not apply(edits, messages, 99, words, applied)  # below the trigger: nothing
    assert apply(edits, messages, 100, words, applied)
    assert results(messages) == ["result number 0", CLEARED, CLEARED, "result number 3", "result number 4"]
    assert applied.report() == {
        "applied_edits": [
            {"type": "clear_tool_uses_20250919", "cleared_tool_uses": 2, "cleared_input_tokens": 6}
        ]
    }


def test_clear_at_least_leaves_everything_when_too_little_would_go() -> None:
    messages = conversation(3)
    edits = ContextEdits(ClearToolUses(trigger=0, keep=2, clear_at_least=50))
    assert not apply(edits, messages, 1000, words, AppliedEdits())
    assert CLEARED not in results(messages)


def test_tool_inputs_are_cleared_when_asked() -> None:
    messages = conversation(2)
    apply(
        ContextEdits(ClearToolUses(trigger=0, keep=1, clear_inputs=True)), messages, 10, words, AppliedEdits()
    )
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert messages[3]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'


def test_thinking_of_older_turns_goes_and_keep_all_keeps_it() -> None:
    messages, applied = conversation(3), AppliedEdits()
    assert apply(ContextEdits(thinking=ClearThinking(keep=1)), messages, 0, words, applied)
    assert [m.get("reasoning") for m in messages if m["role"] == "assistant"] == [None, None, "step 2"]
    assert applied.report() == {
        "applied_edits": [
            {"type": "clear_thinking_20251015", "cleared_thinking_turns": 2, "cleared_input_tokens": 4}
        ]
    }
    kept = conversation(3)
    assert not apply(ContextEdits(thinking=ClearThinking(keep=None)), kept, 0, words, AppliedEdits())
