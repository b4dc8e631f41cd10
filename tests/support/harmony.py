"""A scripted harmony engine: real gpt-oss token ids, from messages rendered with the real
openai-harmony encoding, played back turn by turn behind the real `HarmonyTurns` (so the
prompt rendering, the continuation and `HarmonyParser` all run as they do on vLLM)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from openai_harmony import Message, Role

from vllm_mcp_ext.engine.harmony.render import call_message, encoding
from vllm_mcp_ext.engine.harmony.turns import Generated, HarmonyTurns
from vllm_mcp_ext.types.parts import TurnRequest

START = list(encoding().encode("<|start|>assistant", allowed_special="all"))


def analysis(text: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel("analysis")


def final(text: str) -> Message:
    return Message.from_role_and_content(Role.ASSISTANT, text).with_channel("final")


def call(recipient: str, arguments: str) -> Message:
    return call_message(recipient, arguments)


def output_ids(*messages: Message, drop: int = 0) -> list[int]:
    """A model turn as gpt-oss writes it after the prompt's ``<|start|>assistant``: each message
    rendered, the first without that start (and without ``drop`` more tokens a forced
    ``tool_choice`` wrote for it); the answer ends with ``<|return|>`` as the model stops there."""
    ids: list[int] = []
    for message in messages:
        ids += encoding().render(message)
    assert ids[: len(START)] == START
    ids = ids[len(START) + drop :]
    if messages and messages[-1].channel == "final":
        ids[-1] = encoding().encode("<|return|>", allowed_special="all")[0]
    return ids


class ScriptedHarmonyEngine:
    """One list of output ids per turn; each prompt it was given is kept in `prompts`."""

    def __init__(self, turns: list[list[int]], model_name: str = "gpt-oss-scripted", chunk: int = 3):
        self.turns = list(turns)
        self.model_name = model_name
        self.chunk = chunk  # ids per engine output, as vLLM streams several at a time
        self.prompts: list[list[int]] = []
        self._held: list[int] = []  # the last prompt and its output: what a prefix cache holds
        self.requests: list[TurnRequest] = []

    def serves(self, name: str) -> bool:
        return name == self.model_name

    async def generate(self, prompt_ids: list[int], turn: TurnRequest) -> AsyncIterator[Generated]:
        self.prompts.append(list(prompt_ids))
        self.requests.append(turn)
        ids = self.turns.pop(0)
        cached, held = 0, self._held
        while cached < min(len(held), len(prompt_ids)) and held[cached] == prompt_ids[cached]:
            cached += 1
        self._held = list(prompt_ids) + ids
        for i in range(0, len(ids), self.chunk):
            last = i + self.chunk >= len(ids)
            yield Generated(ids[i : i + self.chunk], "stop" if last else None, cached)


def harmony_turns(engine: ScriptedHarmonyEngine) -> HarmonyTurns:
    return HarmonyTurns(engine)


def decode(ids: list[int]) -> str:
    return encoding().decode(ids)
