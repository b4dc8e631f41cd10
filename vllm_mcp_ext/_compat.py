"""The one place that touches vLLM's private API: thin wrappers, no logic of ours.

Each function or `VllmChat` method is one call (or the few lines vLLM itself runs around it) into
the API server's `OpenAIServingChat`: chat rendering with the model's template, tool/reasoning
parser construction, admission (preflight), ``max_tokens`` defaults, sampling parameters, the
engine's ``generate`` and the tokenizer. What we do with them (continuing held tokens, parsing
deltas into parts) lives in `vllm_mcp_ext.engine`. The next vLLM release should be a one-file
change here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from vllm.entrypoints.generate.base.protocol import validate_request_mm_kwargs
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.utils.api_utils import get_max_tokens
from vllm.exceptions import VLLMValidationError
from vllm.inputs.engine import tokens_input
from vllm.outputs import RequestOutput
from vllm.parser.abstract_parser import Parser
from vllm.renderers import merge_kwargs
from vllm.sampling_params import SamplingParams
from vllm.tool_parsers.tool_strict_level import ToolStrictLevel
from vllm.utils.mistral import is_mistral_tokenizer

from vllm_mcp_ext.errors import InvalidRequest

__all__ = [
    "ChatCompletionRequest",
    "HermesProgress",
    "Parser",
    "RequestOutput",
    "VllmChat",
    "hermes_progress",
    "patch_tool_server_init",
    "stock_chat_completion",
    "stock_create_responses",
    "stock_messages",
    "stock_route",
    "use_vllm_logging",
]


class VllmChat:
    """The API server's `OpenAIServingChat`, reduced to the calls the chat-template engine makes."""

    def __init__(self, serving_chat: OpenAIServingChat):
        self._chat = serving_chat

    @classmethod
    def from_state(cls, state: Any) -> VllmChat | None:
        chat = getattr(state, "openai_serving_chat", None)
        return cls(chat) if chat is not None else None

    # -- the model ------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self._chat.models.model_name(None)

    def serves(self, name: str) -> bool:
        """Whether ``name`` is this server's model (or one of its served names), or a LoRA
        adapter it serves (``--lora-modules`` or loaded at run time)."""
        models = self._chat.models
        return models.is_base_model(name) or name in models.lora_requests

    @property
    def uses_harmony(self) -> bool:
        """gpt-oss models: vLLM's Responses handler renders them with harmony, not a template."""
        return getattr(self._chat.model_config.hf_config, "model_type", None) == "gpt_oss"

    @property
    def renders_text(self) -> bool:
        """Text-only chat-template rendering: not harmony, prompt embeddings or Mistral's
        tokenizer (which render otherwise), so a rendering can be compared as text."""
        chat = self._chat
        return not (
            chat.online_renderer.use_harmony
            or chat.model_config.enable_prompt_embeds
            or is_mistral_tokenizer(chat.renderer.tokenizer)
        )

    @property
    def takes_media(self) -> bool:
        """Whether the model takes images (or audio) through vLLM's multimodal input handling."""
        return bool(self._chat.model_config.is_multimodal_model)

    # -- tokenizer ------------------------------------------------------------------------

    @property
    def has_tokenizer(self) -> bool:
        return self._chat.renderer.tokenizer is not None

    def encode(self, text: str) -> list[int]:
        tokenizer = self._chat.renderer.tokenizer
        assert tokenizer is not None
        return list(tokenizer.encode(text, add_special_tokens=False))

    def decode(self, token_ids: list[int]) -> str:
        tokenizer = self._chat.renderer.tokenizer
        assert tokenizer is not None
        return tokenizer.decode(token_ids, skip_special_tokens=False)

    # -- parsers --------------------------------------------------------------------------

    @property
    def has_parsers(self) -> bool:
        """Whether the server was started with a tool or reasoning parser."""
        return self._chat.parser_cls is not None

    def template_kwargs(self, request: ChatCompletionRequest) -> dict[str, Any]:
        return self._chat._effective_chat_template_kwargs(request)

    def make_parser(self, request: ChatCompletionRequest, template_kwargs: dict[str, Any]) -> Parser | None:
        """The request's tool/reasoning parser, as vLLM's chat completions make it."""
        chat = self._chat
        if chat.parser_cls is None:
            return None
        tokenizer = chat.renderer.tokenizer
        assert tokenizer is not None
        return chat._make_parser(request, tokenizer, template_kwargs)

    def parse_whole(
        self, request: ChatCompletionRequest, template_kwargs: dict[str, Any], text: str
    ) -> tuple[str | None, str | None, list[tuple[str, str]]]:
        """A finished turn's text as vLLM's non-streaming chat completions parse it (a fresh
        parser's ``parse``): its reasoning, content and calls (name, arguments)."""
        parser = self.make_parser(request, template_kwargs)
        assert parser is not None
        reasoning, content, calls = parser.parse(
            text, request, enable_auto_tools=self._chat.enable_auto_tools
        )
        return reasoning, content, [(call.name, call.arguments) for call in calls or ()]

    def adjust_request(
        self, request: ChatCompletionRequest, template_kwargs: dict[str, Any]
    ) -> ChatCompletionRequest:
        """What vLLM's renderer does to a request after rendering: the parsers' adjustments
        (structured outputs for a forced tool, special tokens kept for tool-call markers)."""
        cls: Any = self._chat.parser_cls
        if cls is None:
            return request
        if cls.always_adjust_request or cls.reasoning_parser_cls is not None or request.tool_choice != "none":
            parser = self.make_parser(request, template_kwargs)
            assert parser is not None
            request = cast(ChatCompletionRequest, parser.adjust_request(request=request))
        return request

    def structured_answer(
        self, request: ChatCompletionRequest, template_kwargs: dict[str, Any]
    ) -> ChatCompletionRequest:
        """``response_format`` beside ``tool_choice: auto`` tools as one structural tag: the turn
        is either tool calls (the tool parser's own call syntax, arguments free unless a tool is
        strict) or the constrained answer. vLLM builds exactly this tag only when the server runs
        with ``--tool-strict-level function``; at its default it would constrain the answer and
        make tool calls impossible. The tag is put in ``structured_outputs``, which vLLM's own
        ``adjust_request`` then keeps as it is."""
        if request.response_format is None or request.response_format.type == "text":
            return request
        if not request.tools or request.tool_choice != "auto" or self._chat.parser_cls is None:
            return request
        parser: Any = self.make_parser(request, template_kwargs)
        parser.tool_strict_level = max(parser.tool_strict_level, ToolStrictLevel.FUNCTION)
        return cast(ChatCompletionRequest, parser._apply_structural_tag(request))

    # -- rendering ------------------------------------------------------------------------

    def check_trusted(self, request: ChatCompletionRequest) -> None:
        """vLLM's refusals of what a request may only bring when the operator trusts clients: a
        chat template of its own (``--trust-request-chat-template``), multimodal processor and
        media options (``--trust-request-mm-kwargs``). vLLM's full render checks them; the loop
        renders text itself, so it checks them first, with vLLM's own functions and messages."""
        renderer = self._chat.online_renderer
        error = renderer.validate_chat_template(
            request_chat_template=request.chat_template,
            chat_template_kwargs=request.chat_template_kwargs,
            trust_request_chat_template=renderer.trust_request_chat_template,
        )
        if error is not None:
            raise InvalidRequest(error.error.message, param="chat_template_kwargs")
        try:
            validate_request_mm_kwargs(
                mm_processor_kwargs=request.mm_processor_kwargs,
                media_io_kwargs=request.media_io_kwargs,
                trust_request_mm_kwargs=renderer.trust_request_mm_kwargs,
            )
        except VLLMValidationError as exc:
            raise InvalidRequest(str(exc.args[0]) if exc.args else str(exc), param=exc.parameter) from None

    async def render(self, request: ChatCompletionRequest) -> tuple[Any, list[int], str | None]:
        """vLLM's full chat rendering: the engine input, its token ids and its text."""
        chat = self._chat
        rendered = await chat.render_chat_request(request)
        if isinstance(rendered, ErrorResponse):
            raise InvalidRequest(rendered.error.message, param=rendered.error.param)
        _, engine_inputs = rendered
        engine_input = engine_inputs[0]
        components = chat._extract_prompt_components(engine_input)
        return engine_input, list(components.token_ids or []), components.text

    async def render_text(self, request: ChatCompletionRequest, *, inline: bool = False) -> str | None:
        """The conversation as the template renders it, not tokenized: what vLLM's
        ``OnlineRenderer.preprocess_chat`` renders for a text-only chat request.

        ``inline`` renders on the event loop instead of vLLM's render thread, for a conversation
        known to be small: the template holds the GIL either way, and the hop to the thread and
        back cost more than the rendering (2 to 3 ms wall for 0.5 ms of work on a busy server)."""
        params = self._chat_params(request)
        renderer = self._chat.online_renderer
        render = renderer.renderer
        if inline and hasattr(render, "render_messages"):
            _, prompt = render.render_messages(request.messages, params)  # type: ignore[arg-type]
        else:
            _, prompt = await render.render_messages_async(request.messages, params)  # type: ignore[arg-type]
        text = prompt.get("prompt")
        return text if isinstance(text, str) else None

    def render_settings(self, request: ChatCompletionRequest) -> str:
        """Everything a text rendering depends on besides the messages (the template, its
        kwargs with the tools), as one string to compare."""
        params = self._chat_params(request)
        settings = [
            params.chat_template,
            params.chat_template_content_format,
            params.chat_template_kwargs,
            params.tool_choice,
            params.response_format,
        ]
        return json.dumps(settings, default=str, sort_keys=True)

    def _chat_params(self, request: ChatCompletionRequest) -> Any:
        renderer = self._chat.online_renderer
        if request.tools is None or (
            request.tool_choice == "none" and renderer.exclude_tools_when_tool_choice_none
        ):
            tool_dicts = None
        else:
            tool_dicts = [tool.model_dump() for tool in request.tools]
        return request.build_chat_params(
            renderer.chat_template, renderer.chat_template_content_format
        ).with_defaults(
            merge_kwargs(renderer.default_chat_template_kwargs, {"tools": tool_dicts, "tokenize": False})
        )

    @staticmethod
    def tokens_input(token_ids: list[int], text: str, request: ChatCompletionRequest) -> Any:
        """An engine input of token ids we computed ourselves."""
        return tokens_input(token_ids, prompt=text, cache_salt=request.cache_salt)

    def preflight(self, request: ChatCompletionRequest) -> None:
        """Engine health and admission, as ``render_chat_request`` checks them."""
        self._chat._preflight(request.n or 1)

    # -- generating -----------------------------------------------------------------------

    @property
    def max_model_len(self) -> int:
        return int(self._chat.model_config.max_model_len)

    def max_tokens(self, request: ChatCompletionRequest, prompt_length: int) -> int:
        """Tokens left to generate; 0 when the prompt alone overflows the context window (where
        vLLM's function raises a bare ValueError), which callers answer as the client's error."""
        chat = self._chat
        if prompt_length > chat.model_config.max_model_len:
            return 0
        return get_max_tokens(
            chat.model_config.max_model_len,
            request.max_completion_tokens,
            prompt_length,
            chat.default_sampling_params,
            chat.override_max_tokens,
        )

    def sampling_params(self, request: ChatCompletionRequest, max_tokens: int) -> SamplingParams:
        return request.to_sampling_params(max_tokens, self._chat.default_sampling_params)

    def generate(
        self,
        engine_input: Any,
        sampling: SamplingParams,
        request_id: str,
        request: ChatCompletionRequest,
        parser: Parser | None,
        template_kwargs: dict[str, Any],
        prompt_ids: list[int],
    ) -> AsyncIterator[RequestOutput]:
        chat = self._chat
        return chat.engine_client.generate(
            engine_input,
            sampling,
            request_id,
            lora_request=chat._maybe_get_adapters(request, supports_default_mm_loras=True),
            priority=request.priority,
            **chat._engine_reasoning_kwargs(request, parser, template_kwargs, prompt_ids),
        )


@dataclass(frozen=True)
class HermesProgress:
    """Where vLLM's hermes tool parser stands in a turn, once the reasoning is over: the text of
    the tool phase so far and what it has streamed of it."""

    mode: str  # "auto": hermes parses the text; "none": tool_choice none, text passes through
    text: str
    content_sent: int
    calls: tuple[tuple[str | None, bool, int], ...]  # per call: name, arguments recorded, length streamed


def hermes_progress(parser: Any, request: ChatCompletionRequest) -> HermesProgress | None:
    """vLLM's state after a ``parse_delta``, when from here on that call would only run
    ``Hermes2ProToolParser`` (or pass text through): a plain `DelegatingParser`, not
    engine-based, reasoning over, tool phase started, no named or required tool choice that
    takes another path. None otherwise (the caller keeps calling vLLM)."""
    from vllm.parser.abstract_parser import DelegatingParser
    from vllm.tool_parsers.hermes_tool_parser import Hermes2ProToolParser

    if not isinstance(parser, DelegatingParser) or parser._engine_based:
        return None
    for method in ("parse_delta", "_extract_tool_calls_streaming", "extract_tool_calls_streaming",
                   "finalize_generation", "_flush_engine_parsers", "_in_tool_call_phase"):  # fmt: skip
        if getattr(type(parser), method) is not getattr(DelegatingParser, method):
            return None
    tools = parser._tool_parser
    state = parser._stream_state
    if type(tools) is not Hermes2ProToolParser or not (
        state.reasoning_ended and state.tool_call_text_started
    ):
        return None
    if request.tool_choice == "none":
        mode = "none"
    elif request.tool_choice == "auto" or not tools.supports_required_and_named:
        mode = "auto"
    else:
        return None
    calls = tuple(
        (call.get("name"), "arguments" in call, len(streamed))
        for call, streamed in zip(tools.prev_tool_call_arr, tools.streamed_args_for_tool, strict=False)
    )
    return HermesProgress(mode, state.previous_text, tools._sent_content_idx, calls)


def use_vllm_logging() -> None:
    """Send the plugin's log lines through vLLM's handlers, at INFO, like vLLM's own."""
    import logging

    ours, theirs = logging.getLogger("vllm_mcp_ext"), logging.getLogger("vllm")
    if not ours.handlers:
        for handler in theirs.handlers:
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False


def patch_tool_server_init(native: Callable[[str | None], str | None]) -> None:
    """Let vLLM's own ``init_tool_server`` see only the ``--tool-server`` forms it knows:
    ``native`` takes the raw value and returns those entries.

    vLLM would try to reach ``http://<value>/sse`` for an ``mcp.json`` path or a URL and fail at
    start-up; we hand it only ``demo`` and ``host:port`` entries (their stock meaning).
    """
    from vllm.entrypoints.launchers.api_server import app_state

    original: Callable[[Any], Awaitable[Any]] = app_state.init_tool_server
    if getattr(original, "_vllm_mcp_ext", False):
        return

    async def init_tool_server(args: Any) -> Any:
        from argparse import Namespace

        native_args = Namespace(**{**vars(args), "tool_server": native(getattr(args, "tool_server", None))})
        return await original(native_args)

    init_tool_server._vllm_mcp_ext = True  # type: ignore[attr-defined]
    app_state.init_tool_server = init_tool_server


def _stock_request(model: Any, body: dict[str, Any]) -> Any:
    """``body`` as vLLM's own request model; its first validation error as our 400."""
    from pydantic import ValidationError

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{where}: {err['msg']}", param=where or None) from None


async def stock_create_responses(body: dict[str, Any], raw_request: Any) -> Any:
    """vLLM's own ``POST /v1/responses``, for requests that carry no MCP tool."""
    from vllm.entrypoints.openai.responses.api_router import create_responses
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest

    return await create_responses(_stock_request(ResponsesRequest, body), raw_request=raw_request)


async def stock_chat_completion(body: dict[str, Any], raw_request: Any) -> Any:
    """vLLM's own ``POST /v1/chat/completions``, for requests that carry no MCP tool."""
    from vllm.entrypoints.openai.chat_completion.api_router import create_chat_completion

    return await create_chat_completion(_stock_request(ChatCompletionRequest, body), raw_request=raw_request)


async def stock_messages(body: dict[str, Any], raw_request: Any) -> Any:
    """vLLM's own ``POST /v1/messages`` (Anthropic), for requests without the MCP connector."""
    from vllm.entrypoints.anthropic.api_router import create_messages
    from vllm.entrypoints.anthropic.protocol import AnthropicMessagesRequest

    return await create_messages(_stock_request(AnthropicMessagesRequest, body), raw_request=raw_request)


async def stock_route(name: str, *args: Any) -> Any:
    """One of vLLM's own ``/v1/responses/{id}`` handlers, for responses it made itself."""
    from vllm.entrypoints.openai.responses import api_router

    return await getattr(api_router, name)(*args)


# -- the in-process Python API: vLLM's server state without the server --------------------------


def serve_args(model: str | None, options: dict[str, Any]) -> Any:
    """``vllm serve MODEL --flag value ...`` as the namespace vLLM's CLI parser makes, with
    ``options`` given by their argument names (``tool_call_parser="hermes"``)."""
    from difflib import get_close_matches

    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    args = make_arg_parser(FlexibleArgumentParser()).parse_args([])
    known = vars(args)
    for name, value in options.items():
        if name not in known or name in ("model_tag", "subparser"):
            near = get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TypeError(f"unknown vLLM argument {name!r}{hint}")
        setattr(args, name, value)
    if model is not None:
        args.model = model
    args.subparser = "serve"
    validate_parsed_serve_args(args)
    return args


def start_engine(args: Any) -> Any:
    """An async context manager yielding an `AsyncLLM` for ``args``, shut down on exit."""
    from vllm.entrypoints.launchers.api_server.entry import build_async_engine_client

    return build_async_engine_client(args)


async def serving_state(engine_client: Any, args: Any) -> Any:
    """The state vLLM's API server builds for its routes (chat rendering, parsers, models),
    for ``engine_client``, without an HTTP app. vLLM's own ``--tool-server`` handling is off."""
    from argparse import Namespace

    from starlette.datastructures import State
    from vllm.entrypoints.launchers.api_server.app_state import init_app_state

    state = State()
    native = Namespace(**{**vars(args), "tool_server": None})
    await init_app_state(engine_client, state, native, await engine_client.get_supported_tasks())
    return state
