"""Stock vLLM's chat completions and the plugin's chat-template turns over one scripted engine.

`StockChat` is vLLM's own `OpenAIServingChat` (its real stream and full generators, its parser
construction), built without an engine: only what the generators read is set. `ScriptedChat`
is the plugin's `VllmChat` over that same object, with the engine and the renderer scripted and
everything about parsers (construction, ``adjust_request``, structural tags) left to vLLM. Both
are fed the same model output, token by token, as vLLM's detokenizer would stream it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from mcp import types
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.parser.parser_manager import ParserManager
from vllm.sampling_params import SamplingParams

from tests.support.formats import Family, tokenizer_for
from vllm_mcp_ext._compat import VllmChat
from vllm_mcp_ext.engine.chat_template import ChatTemplateTurns
from vllm_mcp_ext.loop.toolset import ExposedTool
from vllm_mcp_ext.types.parts import Part, ReasoningDelta, TextDelta, ToolCallDelta, TurnRequest

MODEL = "tiny"
PROMPT_IDS = [1, 2, 3]
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


@dataclass
class Turn:
    """A parsed turn: reasoning, content and calls (name, arguments text) in order."""

    reasoning: str = ""
    content: str = ""
    calls: list[list[str]] = field(default_factory=list)

    def add_call(self, index: int, name: str | None, arguments: str | None) -> None:
        while len(self.calls) <= index:
            self.calls.append(["", ""])
        self.calls[index][0] += name or ""
        self.calls[index][1] += arguments or ""

    @property
    def parsed_calls(self) -> list[tuple[str, Any]]:
        """Each call's name and its arguments as JSON (the text where it is not JSON)."""
        return [(name, _loads(arguments)) for name, arguments in self.calls]


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parser_class(family: Family, strict_level: str = "auto", reasoning: bool = True) -> Any:
    """The parser class vLLM's API server composes for ``--tool-call-parser`` (and
    ``--reasoning-parser``), validated against the family's tokenizer as at start-up."""
    return ParserManager.get_parser(
        tool_parser_name=family.tool_parser,
        reasoning_parser_name=family.reasoning_parser if reasoning else None,
        enable_auto_tools=True,
        model_name=MODEL,
        tool_strict_level=strict_level,
        tokenizer=tokenizer_for(family),
    )


def serving_chat(family: Family, parser_cls: Any) -> OpenAIServingChat:
    """vLLM's `OpenAIServingChat` for ``family``, without an engine or a renderer thread."""
    chat = OpenAIServingChat.__new__(OpenAIServingChat)
    tokenizer = tokenizer_for(family)
    chat.parser_cls = parser_cls
    chat.enable_auto_tools = True
    chat.response_role = "assistant"
    chat.chat_template = None
    chat.chat_template_content_format = "auto"
    chat.default_chat_template_kwargs = dict(family.template_kwargs or {})
    chat._include_reasoning_tokens_details = family.reasoning_parser is not None
    chat.enable_force_include_usage = False
    chat.enable_log_outputs = False
    chat.enable_log_deltas = False
    chat.enable_per_request_metrics = False
    chat.enable_prompt_tokens_details = False
    chat.request_logger = None
    chat.system_fingerprint = None
    chat.default_sampling_params = {}
    chat.override_max_tokens = None
    chat.exclude_tools_when_tool_choice_none = False
    chat.model_config = SimpleNamespace(
        max_model_len=4096,
        hf_config=SimpleNamespace(model_type="qwen2"),
        hf_text_config=None,
        hf_overrides=None,
    )
    chat.renderer = SimpleNamespace(tokenizer=tokenizer)
    chat.models = SimpleNamespace(model_name=lambda _=None: MODEL)
    return chat


# -- the model's output, as the engine streams it ----------------------------------------------


def token_deltas(family: Family, text: str) -> list[tuple[str, list[int]]]:
    """``text`` token by token, each token's text as vLLM's incremental detokenizer gives it
    (special tokens kept, as the tool parsers ask)."""
    tokenizer = tokenizer_for(family)
    ids = tokenizer.encode(text, add_special_tokens=False)
    deltas, sent = [], ""
    for i in range(len(ids)):
        so_far = tokenizer.decode(ids[: i + 1], skip_special_tokens=False)
        if so_far.endswith("\ufffd"):  # a multi-byte character not complete yet
            deltas.append(("", [ids[i]]))
            continue
        deltas.append((so_far[len(sent) :], [ids[i]]))
        sent = so_far
    assert sent == text, (sent, text)
    return deltas


def _outputs(deltas: Sequence[tuple[str, list[int]]]) -> list[RequestOutput]:
    last = len(deltas) - 1
    return [
        RequestOutput(
            request_id="scripted",
            prompt=None,
            prompt_token_ids=PROMPT_IDS,
            prompt_logprobs=None,
            outputs=[
                CompletionOutput(
                    index=0,
                    text=text,
                    token_ids=ids,
                    cumulative_logprob=None,
                    logprobs=None,
                    finish_reason="stop" if i == last else None,
                )
            ],
            finished=i == last,
        )
        for i, (text, ids) in enumerate(deltas)
    ]


async def _play(outputs: list[RequestOutput]) -> AsyncIterator[RequestOutput]:
    for output in outputs:
        yield output


# -- stock vLLM ----------------------------------------------------------------------------------


def function_tool(tool: types.Tool) -> dict[str, Any]:
    """The chat-completions function tool a stock client sends for ``tool``."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description or "",
            "parameters": tool.input_schema,
        },
    }


def stock_request(
    chat: OpenAIServingChat, tools: list[types.Tool], tool_choice: Any = "auto", stream: bool = True
) -> ChatCompletionRequest:
    """A stock client's request, as vLLM's renderer leaves it after rendering: adjusted by the
    parsers where ``OnlineRenderer.render_chat`` adjusts it (the same condition, the same call)."""
    request = ChatCompletionRequest.model_validate(
        {
            "model": MODEL,
            "messages": MESSAGES,
            "tools": [function_tool(t) for t in tools],
            "tool_choice": tool_choice,
            "stream": stream,
        }
    )
    parser_cls = chat.parser_cls
    if (
        parser_cls.always_adjust_request
        or parser_cls.reasoning_parser_cls is not None
        or tool_choice != "none"
    ):
        parser = parser_cls(
            chat.renderer.tokenizer,
            request.tools,
            model_config=chat.model_config,
            chat_template_kwargs=chat._effective_chat_template_kwargs(request),
        )
        request = parser.adjust_request(request=request)
    return request


def stock_sampling(chat: OpenAIServingChat, request: ChatCompletionRequest) -> SamplingParams:
    """The sampling parameters stock chat completions give the engine for ``request``."""
    return request.to_sampling_params(4096 - len(PROMPT_IDS), chat.default_sampling_params)


async def stock_stream(
    chat: OpenAIServingChat, family: Family, request: ChatCompletionRequest, text: str
) -> Turn:
    """vLLM's ``chat_completion_stream_generator`` over the scripted output, its chunks summed."""
    deltas = token_deltas(family, text)
    turn = Turn()
    stream = chat.chat_completion_stream_generator(
        request,
        _play(_outputs(deltas)),
        "chatcmpl-scripted",
        MODEL,
        [],
        tokenizer_for(family),
        SimpleNamespace(final_usage_info=None),  # type: ignore[arg-type]
        chat_template_kwargs=chat._effective_chat_template_kwargs(request),
    )
    async for line in stream:
        data = line.removeprefix("data: ").strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            raise AssertionError(chunk)
        for choice in chunk.get("choices", []):
            delta = choice["delta"]
            turn.reasoning += delta.get("reasoning") or ""
            turn.content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                turn.add_call(call["index"], function.get("name"), function.get("arguments"))
    return turn


async def stock_full(
    chat: OpenAIServingChat, family: Family, request: ChatCompletionRequest, text: str
) -> Turn:
    """vLLM's ``chat_completion_full_generator`` over the scripted output, all at once."""
    ids = tokenizer_for(family).encode(text, add_special_tokens=False)
    response = await chat.chat_completion_full_generator(
        request,
        _play(_outputs([(text, ids)])),
        "chatcmpl-scripted",
        MODEL,
        [],
        tokenizer_for(family),
        SimpleNamespace(final_usage_info=None),  # type: ignore[arg-type]
        parser=chat._make_parser(
            request, tokenizer_for(family), chat._effective_chat_template_kwargs(request)
        ),
    )
    if not hasattr(response, "choices"):
        raise AssertionError(response)
    message = response.choices[0].message
    turn = Turn(reasoning=message.reasoning or "", content=message.content or "")
    for i, call in enumerate(message.tool_calls or []):
        turn.add_call(i, call.function.name, call.function.arguments)
    return turn


# -- the plugin ----------------------------------------------------------------------------------


class ScriptedChat(VllmChat):
    """The plugin's `VllmChat` over vLLM's serving chat, with the renderer and the engine
    scripted: the prompt is fixed, the engine plays ``text`` token by token. The sampling
    parameters the plugin asked for are kept in `sampling`."""

    def __init__(self, chat: OpenAIServingChat, family: Family, text: str):
        super().__init__(chat)
        self._family = family
        self._text = text
        self.sampling: SamplingParams | None = None

    @property
    def model_name(self) -> str:
        return MODEL

    def serves(self, name: str) -> bool:
        return name == MODEL

    @property
    def uses_harmony(self) -> bool:
        return False

    @property
    def renders_text(self) -> bool:
        return True

    @property
    def takes_media(self) -> bool:
        return False

    @property
    def max_model_len(self) -> int:
        return 4096

    def check_trusted(self, request: ChatCompletionRequest) -> None:
        pass

    async def render_text(self, request: ChatCompletionRequest, *, inline: bool = False) -> str | None:
        return "prompt"

    def render_settings(self, request: ChatCompletionRequest) -> str:
        tools = [tool.model_dump() for tool in request.tools or ()]
        return json.dumps([type(self).__name__, tools, request.tool_choice], default=str)

    def encode(self, text: str) -> list[int]:
        return list(PROMPT_IDS) if text == "prompt" else super().encode(text)

    def preflight(self, request: ChatCompletionRequest) -> None:
        pass

    def generate(self, engine_input: Any, sampling: SamplingParams, *args: Any, **kwargs: Any) -> Any:
        self.sampling = sampling
        return _play(_outputs(token_deltas(self._family, self._text)))


def mcp_turn(tools: list[types.Tool], tool_choice: Any = "auto") -> TurnRequest:
    """The turn the plugin's loop asks for with ``tools`` from an MCP server."""
    exposed = [ExposedTool(t.name, "weather", t) for t in tools]
    return TurnRequest(
        request_id="resp-scripted",
        messages=list(MESSAGES),
        tools=[t.function_param() for t in exposed],
        tool_choice=tool_choice,
        max_tokens=None,
    )


async def plugin_turn(chat: ScriptedChat, turn: TurnRequest) -> tuple[Turn, list[Part]]:
    """The plugin's chat-template turn: its parts, and the turn they add up to."""
    parts = [part async for part in ChatTemplateTurns(chat).run_turn(turn)]
    summed = Turn()
    for part in parts:
        if isinstance(part, ReasoningDelta):
            summed.reasoning += part.text
        elif isinstance(part, TextDelta):
            summed.content += part.text
        elif isinstance(part, ToolCallDelta):
            summed.add_call(part.index, part.name, part.arguments)
    return summed, parts
