"""What an engine path provides to the loop: one model turn, as typed parts.

Two engine paths fit here, one per model family:

* `ChatTemplateTurns` (``engine/chat_template.py``): models vLLM renders with their chat
  template, parsed by the configured tool and reasoning parsers;
* `HarmonyTurns` (``engine/harmony/``): gpt-oss models, rendered with ``openai_harmony`` and
  parsed by channel with its own `ResponsesParser` (`HarmonyParser`). `model_turns` chooses.

Both yield the same parts (``types/parts.py``), so the loop, the events and the service do not
know which family runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from vllm_mcp_ext.types.parts import Part, TurnRequest

if TYPE_CHECKING:
    from vllm_mcp_ext._compat import VllmChat


class ModelTurns(Protocol):
    """One model family's turns: render the conversation, generate, parse the output."""

    model_name: str

    def check_model(self, name: str | None) -> None:
        """Raise `NotFound` for a ``model`` this engine does not serve."""
        ...

    def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        """The turn's parts in generation order, ending with one `TurnEnd`."""
        ...


def model_turns(chat: VllmChat) -> ModelTurns:
    """The engine path for the server's model: harmony for gpt-oss, else the chat template."""
    from vllm_mcp_ext.engine.chat_template import ChatTemplateTurns

    if chat.uses_harmony:
        from vllm_mcp_ext.engine.harmony.turns import HarmonyTurns

        return HarmonyTurns(chat)

    return ChatTemplateTurns(chat)
