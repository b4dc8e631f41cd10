"""What keeps a loop from running away: repeated identical calls and spent tool budgets.

A call that repeats an earlier call of the same response (the same tool, the same arguments,
compared as parsed JSON) does not run again: the model gets the earlier result again, with
`REPEAT_NOTE` after it. After ``VLLM_MCP_MAX_REPEATED_CALLS`` such repeats, once
``max_tool_calls`` is spent, or for the last turn ``VLLM_MCP_MAX_TURNS`` allows, the remaining turns run without the MCP tools and the model is told
why (`TOOLS_OFF_*`, after the last tool result it sees), so it answers with what it has.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from typing import Any

from vllm_mcp_ext.types.source import CallOutcome

REPEAT_NOTE = (
    "\n[This call repeats an earlier call of this response (same tool, same arguments), so it "
    "did not run again: the result above is the earlier one.]"
)
TOOLS_OFF_LIMIT = (
    "\n[No more tool calls can run in this response: it reached max_tool_calls. Answer with what you have.]"
)
TOOLS_OFF_TURNS = (
    "\n[This response is at its last model turn (the server's turn limit): no more tool calls "
    "can run. Answer with what you have.]"
)
TOOLS_OFF_REPEATS = (
    "\n[Tools are off for the rest of this response: calls were repeated with the same arguments "
    "{repeats} times. Answer with what you have.]"
)


def call_key(name: str, arguments: str) -> tuple[str, str]:
    """A call's identity: its tool and its arguments (as parsed JSON, so spacing and key order
    do not count; arguments that do not parse compare as written)."""
    try:
        canonical = json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except (ValueError, RecursionError):
        canonical = arguments
    return name, canonical


@dataclass
class CallGuard:
    """One response's record of calls that ran, and whether tools are still on."""

    max_repeats: int
    earlier: dict[tuple[str, str], asyncio.Task[CallOutcome]] = field(default_factory=dict)
    repeats: int = 0
    off: str | None = None  # why tools are off: the note the model gets
    told: bool = False  # whether the model got that note

    def earlier_run(self, name: str, arguments: str) -> asyncio.Task[CallOutcome] | None:
        """The earlier identical call's task, counted as a repeat; None for a new call."""
        earlier = self.earlier.get(call_key(name, arguments))
        if earlier is not None:
            self.repeats += 1
            if self.repeats >= self.max_repeats and self.off is None:
                self.off = TOOLS_OFF_REPEATS.format(repeats=self.repeats)
        return earlier

    def ran(self, name: str, arguments: str, task: asyncio.Task[CallOutcome]) -> None:
        self.earlier.setdefault(call_key(name, arguments), task)

    def limit_reached(self) -> None:
        if self.off is None:
            self.off = TOOLS_OFF_LIMIT

    def last_turn_next(self) -> None:
        if self.off is None:
            self.off = TOOLS_OFF_TURNS

    def note_for_model(self) -> str | None:
        """Why tools went off, once: after the tool results of the turn that turned them off."""
        if self.off is None or self.told:
            return None
        self.told = True
        return self.off


async def again(earlier: asyncio.Task[CallOutcome]) -> CallOutcome:
    """A repeated call's outcome: the earlier one, and the note for the model."""
    outcome = await asyncio.shield(earlier)
    return replace(outcome, model_text=outcome.model_text + REPEAT_NOTE)


def with_note(content: str | list[dict[str, Any]], note: str) -> str | list[dict[str, Any]]:
    """A tool message's content with a note after its text (media parts stay after it)."""
    if isinstance(content, str):
        return content + note
    parts = list(content)
    for i, part in enumerate(parts):
        if part.get("type") == "text":
            parts[i] = {**part, "text": str(part.get("text", "")) + note}
            return parts
    return [{"type": "text", "text": note.lstrip()}, *parts]
