"""A scripted engine: plays back a model's turns as parts, for tests where a real engine is not
the point. It implements `vllm_mcp_ext.engine.turns.ModelTurns`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from vllm_mcp_ext.errors import NotFound
from vllm_mcp_ext.types.parts import Part, ToolCallDelta, TurnEnd, TurnUsage


class ScriptedTurns:
    """One list of parts per turn, played in order; each turn ends with a `TurnEnd`. The
    conversation each turn was given is kept in `seen`."""

    def __init__(self, turns: list[list[Part]], model_name: str = "scripted"):
        self.turns = list(turns)
        self.model_name = model_name
        self.seen: list[list[dict[str, Any]]] = []
        self.choices: list[Any] = []  # each turn's tool_choice

    def check_model(self, name: str | None) -> None:
        if name not in (None, self.model_name):
            raise NotFound(f"The model `{name}` does not exist.", param="model", code="model_not_found")

    async def run_turn(self, turn: Any) -> AsyncIterator[Part]:
        self.seen.append([dict(m) for m in turn.messages])
        self.choices.append(turn.tool_choice)
        for part in self.turns.pop(0):
            yield part
        yield TurnEnd("stop", TurnUsage(prompt_tokens=10, cached_tokens=4, output_tokens=5))


def play(engine: ScriptedTurns, *turns: list[Part]) -> None:
    """Give ``engine`` these turns to play next (a shared engine, per test)."""
    engine.turns = list(turns)


def tool_call(name: str, arguments: str, index: int = 0) -> list[Part]:
    """A call as a tool parser streams it: the name, then the arguments in two pieces."""
    half = len(arguments) // 2
    return [
        ToolCallDelta(index, name),
        ToolCallDelta(index, arguments=arguments[:half]),
        ToolCallDelta(index, arguments=arguments[half:]),
    ]
