"""Anthropic's context editing (``context_management.edits`` on ``/v1/messages``), in the loop.

Before each model turn (``clear_tool_uses`` only once the turn's input tokens are estimated past
its trigger: the first turn's as rendered, a later turn's as the previous prompt plus what the
model wrote):

- ``clear_tool_uses_20250919``: the results of the oldest tool uses, all but the most recent
  ``keep`` (and never those of ``exclude_tools``), are replaced by `CLEARED` (their inputs too,
  with ``clear_tool_inputs``); with ``clear_at_least``, only when that many tokens go.
- ``clear_thinking_20251015``: the reasoning of all but the most recent ``keep`` assistant turns
  is dropped (``keep: "all"`` keeps it).

The conversation the model sees changes before that turn, so the engine renders it anew (the
prefix cache serves what is unchanged). Each edit that ran is reported, once per response, in
the message's ``context_management.applied_edits``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CLEARED = "[This tool result was cleared to save context.]"
DEFAULT_TRIGGER = 100_000  # input tokens, as Anthropic's default
DEFAULT_KEEP_TOOL_USES = 3
DEFAULT_KEEP_THINKING_TURNS = 1


@dataclass(frozen=True)
class ClearToolUses:
    trigger: int = DEFAULT_TRIGGER
    keep: int = DEFAULT_KEEP_TOOL_USES
    clear_at_least: int = 0
    exclude: frozenset[str] = frozenset()
    clear_inputs: bool | frozenset[str] = False


@dataclass(frozen=True)
class ClearThinking:
    keep: int | None = DEFAULT_KEEP_THINKING_TURNS  # None: keep all


@dataclass(frozen=True)
class ContextEdits:
    tool_uses: ClearToolUses | None = None
    thinking: ClearThinking | None = None


@dataclass
class AppliedEdits:
    """What the edits cleared over the response, as Anthropic reports it."""

    tool_uses: int = 0
    tool_tokens: int = 0
    thinking_turns: int = 0
    thinking_tokens: int = 0
    ran: list[str] = field(default_factory=list)  # the edit types that ran, in order

    def report(self) -> dict[str, Any] | None:
        edits: list[dict[str, Any]] = []
        for kind in self.ran:
            if kind == "clear_thinking_20251015":
                edits.append(
                    {
                        "type": kind,
                        "cleared_thinking_turns": self.thinking_turns,
                        "cleared_input_tokens": self.thinking_tokens,
                    }
                )
            else:
                edits.append(
                    {
                        "type": kind,
                        "cleared_tool_uses": self.tool_uses,
                        "cleared_input_tokens": self.tool_tokens,
                    }
                )
        return {"applied_edits": edits} if edits else None


Count = Callable[[str], int]


def apply(
    edits: ContextEdits,
    messages: list[dict[str, Any]],
    input_tokens: int,
    count: Count,
    applied: AppliedEdits,
) -> bool:
    """Edit ``messages`` in place where their trigger is reached; whether anything changed."""
    changed = False
    if edits.thinking is not None:
        changed |= _clear_thinking(edits.thinking, messages, count, applied)
    if edits.tool_uses is not None and input_tokens >= edits.tool_uses.trigger:
        changed |= _clear_tool_uses(edits.tool_uses, messages, count, applied)
    return changed


def _clear_tool_uses(
    edit: ClearToolUses, messages: list[dict[str, Any]], count: Count, applied: AppliedEdits
) -> bool:
    names: dict[str, str] = {}
    calls: dict[str, dict[str, Any]] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[call["id"]] = call["function"]["name"]
            calls[call["id"]] = call
    results = [
        m
        for m in messages
        if m.get("role") == "tool"
        and m.get("content") != CLEARED
        and names.get(m["tool_call_id"]) not in edit.exclude
    ]
    older = results[: max(len(results) - edit.keep, 0)]
    freed = sum(count(_text(m["content"])) for m in older)
    if not older or freed < edit.clear_at_least:
        return False
    for message in older:
        message["content"] = CLEARED
        call = calls.get(message["tool_call_id"])
        if call is not None and _clears_input(edit, call["function"]["name"]):
            freed += count(call["function"]["arguments"])
            call["function"] = {**call["function"], "arguments": "{}"}
    applied.tool_uses += len(older)
    applied.tool_tokens += freed
    _ran(applied, "clear_tool_uses_20250919")
    return True


def _clear_thinking(
    edit: ClearThinking, messages: list[dict[str, Any]], count: Count, applied: AppliedEdits
) -> bool:
    if edit.keep is None:
        return False
    thinking = [m for m in messages if m.get("role") == "assistant" and m.get("reasoning")]
    older = thinking[: max(len(thinking) - edit.keep, 0)]
    if not older:
        return False
    for message in older:
        applied.thinking_tokens += count(str(message.pop("reasoning")))
    applied.thinking_turns += len(older)
    _ran(applied, "clear_thinking_20251015")
    return True


def _clears_input(edit: ClearToolUses, name: str) -> bool:
    return edit.clear_inputs is True or (
        isinstance(edit.clear_inputs, frozenset) and name in edit.clear_inputs
    )


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content)


def _ran(applied: AppliedEdits, kind: str) -> None:
    if kind not in applied.ran:
        applied.ran.append(kind)
