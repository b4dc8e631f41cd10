"""Model turns for gpt-oss: the conversation rendered in harmony, the engine fed token ids, the
output parsed token by token (`HarmonyParser`).

A tool turn's prompt is token-exact: the previous prompt, the ids the model generated (ending
with ``<|call|>``), the rendered tool results and ``<|start|>assistant``. Harmony renders the
same messages the same way every time, so this equals a full re-render whenever the model wrote
its call as harmony renders it; where it wrote otherwise (spacing in a header), the prompt still
holds what the model actually wrote, and vLLM's prefix cache serves all of it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from vllm_mcp_ext._compat import ChatCompletionRequest, VllmChat
from vllm_mcp_ext.engine.fit import PromptSize
from vllm_mcp_ext.engine.harmony.parser import HarmonyParser
from vllm_mcp_ext.engine.harmony.render import (
    ToolNames,
    assistant_start,
    chat_messages,
    conversation,
    encode_special,
    encoding,
    message_ids,
    prefill,
    prompt_ids,
)
from vllm_mcp_ext.engine.media import has_media, without_tool_media
from vllm_mcp_ext.errors import ContextTooLong, InvalidRequest, NotFound, Unsupported
from vllm_mcp_ext.types.parts import HeldTokens, Part, TurnEnd, TurnRequest, TurnUsage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HarmonyHeld(HeldTokens):
    """Held tokens of a harmony turn, and how many conversation messages its prompt rendered."""

    messages: int = 0


@dataclass(frozen=True)
class HarmonyPrompt:
    """One turn's prompt: its ids (a forced tool_choice's header included) and that header."""

    token_ids: list[int]
    prefill: list[int]
    continued: bool


def harmony_prompt(turn: TurnRequest, names: ToolNames) -> HarmonyPrompt:
    """The turn's prompt ids: the held ids continued where they can be, else a full render."""
    forced = encode_special(prefill(turn.tool_choice, names)) if turn.tools else []
    held = turn.held
    if isinstance(held, HarmonyHeld):
        new = continuation(turn, held, names)
        if new is not None:
            return HarmonyPrompt(held.token_ids + new + assistant_start() + forced, forced, True)
    return HarmonyPrompt(prompt_ids(conversation(turn, names)) + forced, forced, False)


def continuation(turn: TurnRequest, held: HarmonyHeld, names: ToolNames) -> list[int] | None:
    """The ids of the tool results that follow the held turn; None when the conversation
    changed otherwise (then the prompt is rendered in full)."""
    stops = set(encoding().stop_tokens_for_assistant_actions())
    if not held.output_ids or held.output_ids[-1] not in stops:
        return None  # the model's message is not closed: harmony would render it otherwise
    messages = [m for m in turn.messages if m["role"] != "system"]
    after = messages[held.messages :]
    if not after or after[0]["role"] != "assistant" or any(m["role"] != "tool" for m in after[1:]):
        return None
    # The assistant turn is held as the model wrote it; only its results are rendered, with
    # the recipients its calls went to.
    rendered = chat_messages(after, names)
    return message_ids(rendered[len(chat_messages(after[:1], names)) :])


@dataclass(frozen=True)
class Generated:
    """What one engine output adds: the new token ids, and the finish reason once finished."""

    token_ids: list[int]
    finish_reason: str | None = None
    cached_tokens: int = 0


class HarmonyEngine(Protocol):
    """Generates from prompt ids: vLLM's engine (`VllmHarmonyEngine`), or a scripted one in
    tests."""

    model_name: str

    def serves(self, name: str) -> bool: ...

    def generate(self, prompt_ids: list[int], turn: TurnRequest) -> AsyncIterator[Generated]: ...


class VllmHarmonyEngine:
    """vLLM's engine, through `VllmChat`: admission, ``max_tokens``, sampling defaults."""

    def __init__(self, chat: VllmChat):
        self._chat = chat
        self.model_name = chat.model_name

    def serves(self, name: str) -> bool:
        return self._chat.serves(name)

    @property
    def context_window(self) -> int:
        return self._chat.max_model_len

    async def generate(self, prompt_ids: list[int], turn: TurnRequest) -> AsyncIterator[Generated]:
        chat = self._chat
        request = _sampling_request(self.model_name, turn)
        chat.preflight(request)
        max_tokens = chat.max_tokens(request, len(prompt_ids))
        if max_tokens <= 0:
            raise ContextTooLong(
                f"the conversation ({len(prompt_ids)} tokens) no longer fits the model's context "
                f"window ({chat.max_model_len} tokens)",
                param="input",
            )
        engine_input = chat.tokens_input(prompt_ids, encoding().decode(prompt_ids), request)
        sampling = chat.sampling_params(request, max_tokens)
        async for result in chat.generate(engine_input, sampling, turn.request_id, request, None, {}, []):
            for output in result.outputs:
                yield Generated(list(output.token_ids), output.finish_reason, result.num_cached_tokens or 0)


class HarmonyTurns:
    """`ModelTurns` for gpt-oss (harmony) models."""

    def __init__(self, engine: HarmonyEngine | VllmChat):
        self._engine = VllmHarmonyEngine(engine) if isinstance(engine, VllmChat) else engine
        self.model_name = self._engine.model_name
        self.takes_media = False  # gpt-oss reads text only

    def check_model(self, name: str | None) -> None:
        if name and not self._engine.serves(name):
            raise NotFound(f"The model `{name}` does not exist.", param="model", code="model_not_found")

    # -- fitting the context window (engine/fit.py's MeasuresPrompts) -------------------------

    @property
    def context_window(self) -> int:
        """The engine's window; 0 for an engine that does not say (a scripted one)."""
        return int(getattr(self._engine, "context_window", 0))

    async def prompt_size(self, turn: TurnRequest) -> PromptSize | None:
        """The first turn's prompt size (harmony renders in process: cheap to render twice)."""
        window = self.context_window
        if not window or has_media(without_tool_media(turn.messages)):
            return None
        tools = turn.tools if turn.tool_choice != "none" else []
        size = len(harmony_prompt(turn, ToolNames.build(tools, turn.tool_servers)).token_ids)
        if size < window or not tools:
            return PromptSize(size, 0, window, len(tools))
        bare = len(harmony_prompt(replace(turn, tools=[]), ToolNames.build([], {})).token_ids)
        return PromptSize(size, size - bare, window, len(tools))

    def count_tokens(self, text: str) -> int:
        return len(encoding().encode(text, allowed_special=set(), disallowed_special=()))

    def cut_to_tokens(self, text: str, budget: int) -> tuple[str, int] | None:
        if len(text) <= budget:
            return None
        ids = encoding().encode(text, allowed_special=set(), disallowed_special=())
        if len(ids) <= budget:
            return None
        return encoding().decode(ids[:budget]), len(ids)

    async def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        if turn.response_format is not None:
            raise Unsupported(
                "text.format other than text is not supported for gpt-oss with MCP tools",
                param="text.format",
            )
        turn = replace(turn, messages=without_tool_media(turn.messages))  # gpt-oss reads text
        if has_media(turn.messages):
            raise InvalidRequest(
                f"model {self.model_name!r} is not a multimodal model: it takes no image, audio or "
                "image/audio file input",
                param="input",
            )
        names = ToolNames.build(turn.tools if turn.tool_choice != "none" else [], turn.tool_servers)
        prompt = harmony_prompt(turn, names)
        parser = HarmonyParser(names, prompt.prefill)
        output_ids: list[int] = []
        cached, finish = 0, None
        async for generated in self._engine.generate(prompt.token_ids, turn):
            cached = generated.cached_tokens or cached
            finish = generated.finish_reason
            output_ids.extend(generated.token_ids)
            for part in parser.feed_ids(generated.token_ids):
                yield part
        for part in parser.close():
            yield part
        usage = TurnUsage(
            prompt_tokens=len(prompt.token_ids),
            cached_tokens=cached,
            output_tokens=len(output_ids),
            reasoning_tokens=parser.reasoning_tokens(output_ids),
        )
        covered = sum(1 for m in turn.messages if m["role"] != "system")
        held = HarmonyHeld("", prompt.token_ids, output_ids, messages=covered)
        yield TurnEnd(finish_reason=finish, usage=usage, held=held)


def _sampling_request(model: str, turn: TurnRequest) -> ChatCompletionRequest:
    """The sampling side of a chat request (vLLM's defaults and checks); harmony's stop tokens
    end each assistant action (``<|call|>``, ``<|return|>``)."""
    fields: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": ""}],
        "max_completion_tokens": turn.max_tokens,
        "temperature": turn.temperature,
        "top_p": turn.top_p,
        "stop_token_ids": list(encoding().stop_tokens_for_assistant_actions()),
        "skip_special_tokens": False,
        "stream": True,
        "seed": None,
    }
    try:
        return ChatCompletionRequest(**fields)
    except ValueError as exc:
        raise InvalidRequest(f"invalid request for the model: {exc}") from None
