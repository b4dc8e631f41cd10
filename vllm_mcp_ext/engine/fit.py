"""Whether a turn fits the model's context window, and tool results within a token budget.

An engine path that can count tokens implements `MeasuresPrompts` beside `ModelTurns`; the loop
then refuses a first turn that cannot fit before the response starts (a 400 with the counts),
and cuts a tool result past its token budget before the model sees it. An engine that cannot
count (a scripted one) skips both checks; a turn that then does not fit ends the response
``incomplete`` like any later turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vllm_mcp_ext.errors import ContextTooLong
from vllm_mcp_ext.types.parts import TurnRequest


@dataclass(frozen=True)
class PromptSize:
    """A rendered prompt's tokens, how many of them the tool definitions take, and the window."""

    tokens: int
    tool_tokens: int
    context_window: int
    tool_count: int = 0

    @property
    def fits(self) -> bool:
        """Room for at least one generated token, as vLLM requires."""
        return self.tokens < self.context_window


@runtime_checkable
class MeasuresPrompts(Protocol):
    """What the loop asks of an engine path that counts tokens."""

    context_window: int

    async def prompt_size(self, turn: TurnRequest) -> PromptSize | None:
        """The turn's prompt size (after ``truncation: "auto"``), or None where it cannot tell."""
        ...

    def cut_to_tokens(self, text: str, budget: int) -> tuple[str, int] | None:
        """``text``'s first ``budget`` tokens and its whole count, or None when it fits."""
        ...

    def count_tokens(self, text: str) -> int: ...


def too_long(size: PromptSize) -> ContextTooLong:
    """The 400 for a first turn that cannot fit, with the counts a client acts on."""
    tools = (
        f" ({size.tool_tokens} of them the definitions of {size.tool_count} tools: name fewer with "
        "allowed_tools, or load them on demand with defer_loading and tool_search)"
        if size.tool_count
        else ""
    )
    return ContextTooLong(
        f"The prompt is {size.tokens} tokens{tools}, but the model's context window is "
        f"{size.context_window} tokens, with room for at least one output token. Shorten the "
        "input or set truncation to 'auto'.",
        param="input",
    )


CUT_MARKER = (
    "\n[cut: the tool returned {total} tokens; the first {kept} are shown (the tool-result budget "
    "is {kept} tokens). The client got the whole result.]"
)


def cut_result(text: str, budget: int | None, engine: object) -> str:
    """A tool result as the model sees it: whole, or its first ``budget`` tokens and a marker."""
    if budget is None or not isinstance(engine, MeasuresPrompts):
        return text
    cut = engine.cut_to_tokens(text, budget)
    if cut is None:
        return text
    head, total = cut
    return head + CUT_MARKER.format(total=total, kept=budget)


def token_counter(engine: object) -> Callable[[str], int]:
    """The engine's token count, or about four characters a token where it cannot count."""
    if isinstance(engine, MeasuresPrompts):
        return engine.count_tokens
    return lambda text: (len(text) + 3) // 4


def result_budget(configured: int | None, engine: object) -> int | None:
    """``VLLM_MCP_MAX_TOOL_RESULT_TOKENS``, else a quarter of the context window."""
    if configured is not None:
        return configured
    if isinstance(engine, MeasuresPrompts):
        return max(engine.context_window // 4, 1)
    return None
