"""A model turn: what it is asked (`TurnRequest`) and what it produces after the model's parsers
(typed parts, in generation order), and the tokens the engine holds after it (`HeldTokens`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderedFrom:
    """What a prompt's text was rendered from: the template settings (template, kwargs, tools)
    and the messages, as JSON, and how many messages."""

    settings: str
    messages: str
    count: int

    def extended_by(self, later: RenderedFrom) -> bool:
        """Whether ``later`` has the same settings and starts with these very messages."""
        if later.settings != self.settings or later.count <= self.count or self.count == 0:
            return False
        return later.messages.startswith(self.messages[:-1] + ", ")  # "[a, b" of "[a, b, c]"


@dataclass(frozen=True)
class HeldTokens:
    """What the engine holds after a turn: its prompt (text and ids) and the generated ids."""

    prompt_text: str
    prompt_ids: list[int]
    output_ids: list[int]
    source: RenderedFrom | None = None  # what ``prompt_text`` was rendered from, where known

    @property
    def token_ids(self) -> list[int]:
        return self.prompt_ids + self.output_ids


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class TokenLogprob:
    """One sampled token's logprob, and the most likely tokens at its place (``top_logprobs``)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class TextDelta:
    text: str
    # with `include: ["message.output_text.logprobs"]`: the tokens of the engine step this text came in
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call of the turn: its name first, then argument text."""

    index: int
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class TurnUsage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class RawTurn:
    """A turn as the engine saw it: the rendered prompt and what the model wrote, with token ids
    (vLLM's ``enable_response_messages``)."""

    prompt: str
    prompt_ids: list[int]
    output: str
    output_ids: list[int]


@dataclass(frozen=True)
class TurnEnd:
    finish_reason: str | None  # "stop", "length", "abort", ...
    usage: TurnUsage
    # What the engine holds after this turn; the next turn's `TurnRequest.held`.
    held: HeldTokens | None = None
    raw: RawTurn | None = None


Part = ReasoningDelta | TextDelta | ToolCallDelta | TurnEnd


@dataclass
class TurnRequest:
    """One model turn to run: the conversation so far and the tools offered."""

    request_id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    max_tokens: int | None
    temperature: float | None = None
    top_p: float | None = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None  # chat-completions form of `text.format`
    reasoning_effort: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)  # vLLM's extensions, by name
    logprobs: int | None = None  # top_logprobs per token, when output text logprobs are asked for
    truncate: bool = False
    model: str | None = (
        None  # the request's `model`: the base model or a served LoRA adapter  # `truncation: "auto"`: drop the oldest messages when they do not fit
    )
    # The previous turn's tokens (its `TurnEnd.held`): the new prompt continues them when the
    # chat template allows, so the engine's prefix cache serves all of them.
    held: HeldTokens | None = None
    # Which MCP server and tool each offered function name stands for (exposed name ->
    # (server_label, tool name)); engines that show servers as tool namespaces (harmony) use it.
    tool_servers: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the tools the model may call this turn: those in the prompt and those tool_search found
    loaded_tools: tuple[str, ...] = ()
