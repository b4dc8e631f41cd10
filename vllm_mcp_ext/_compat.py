"""The one place that touches vLLM internals. The next vLLM release should be a one-file change.

What we use: the API server's `OpenAIServingChat` (chat rendering with the model's template,
tool/reasoning parser construction, sampling defaults) and its `EngineClient.generate`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.utils.api_utils import get_max_tokens
from vllm.inputs.engine import tokens_input
from vllm.outputs import RequestOutput
from vllm.parser.abstract_parser import Parser
from vllm.renderers import merge_kwargs
from vllm.utils.mistral import is_mistral_tokenizer

from vllm_mcp_ext.engine.continuation import HeldTokens, HistoryRewritten, suffix_after
from vllm_mcp_ext.errors import InvalidRequest, NotFound

__all__ = [
    "ChatCompletionRequest",
    "EngineSeam",
    "Generation",
    "HeldTokens",
    "HistoryRewritten",
    "Parser",
    "RequestOutput",
    "patch_tool_server_init",
    "use_vllm_logging",
]


@dataclass
class Generation:
    """One engine request: the rendered prompt, its parser, and the output stream."""

    request: ChatCompletionRequest
    prompt_token_ids: list[int]
    parser: Parser | None  # None: no tool or reasoning parser configured, and no tools offered
    outputs: AsyncIterator[RequestOutput]
    prompt_text: str | None = None  # the template's rendering of the conversation
    continued: bool = False  # the prompt extends the held tokens of the previous turn
    rewritten: str | None = None  # why held tokens could not be continued, if they were given


class EngineSeam:
    """Render a chat-completions request with the model's template and start generating."""

    def __init__(self, serving_chat: OpenAIServingChat):
        self._chat = serving_chat

    @classmethod
    def from_state(cls, state: Any) -> EngineSeam | None:
        chat = getattr(state, "openai_serving_chat", None)
        return cls(chat) if chat is not None else None

    @property
    def uses_harmony(self) -> bool:
        """gpt-oss models: vLLM's Responses handler renders them with harmony, not a template."""
        return getattr(self._chat.model_config.hf_config, "model_type", None) == "gpt_oss"

    @property
    def model_name(self) -> str:
        return self._chat.models.model_name(None)

    def check_model(self, name: str | None) -> None:
        """A 404 for a model this server does not serve, as vLLM's own routes answer."""
        if name and not self._chat.models.is_base_model(name):
            raise NotFound(f"The model `{name}` does not exist.", param="model", code="model_not_found")

    async def start(
        self, request: ChatCompletionRequest, request_id: str, held: HeldTokens | None = None
    ) -> Generation:
        """Render the request (continuing ``held``, the previous turn's tokens, where the
        template allows) and start generating."""
        chat = self._chat
        if chat.parser_cls is None and request.tools:
            raise InvalidRequest(
                "tools need the server started with --enable-auto-tool-choice and --tool-call-parser",
                param="tools",
            )
        tokenizer = chat.renderer.tokenizer
        if tokenizer is None:
            raise InvalidRequest("MCP tools need the model's tokenizer (not --skip-tokenizer-init)")
        template_kwargs = chat._effective_chat_template_kwargs(request)
        parser = chat._make_parser(request, tokenizer, template_kwargs) if chat.parser_cls else None
        rewritten = None
        continued = await self._continue(request, held) if held is not None and self._can_continue() else None
        if isinstance(continued, HistoryRewritten):
            rewritten, continued = continued.reason, None
        if continued is not None:
            prompt_ids, prompt_text = continued
            chat._preflight(request.n or 1)  # engine health and admission, as render_chat_request
            request = self._adjust(request, tokenizer, template_kwargs)
            engine_input: Any = tokens_input(prompt_ids, prompt=prompt_text, cache_salt=request.cache_salt)
        else:
            rendered = await chat.render_chat_request(request)
            if isinstance(rendered, ErrorResponse):
                raise InvalidRequest(rendered.error.message, param=rendered.error.param)
            _, engine_inputs = rendered
            engine_input = engine_inputs[0]
            components = chat._extract_prompt_components(engine_input)
            prompt_ids, prompt_text = list(components.token_ids or []), components.text
        max_tokens = get_max_tokens(
            chat.model_config.max_model_len,
            request.max_completion_tokens,
            len(prompt_ids),
            chat.default_sampling_params,
            chat.override_max_tokens,
        )
        if max_tokens <= 0:
            raise InvalidRequest(
                "the conversation no longer fits the model's context window",
                param="input",
                code="context_length_exceeded",
            )
        sampling = request.to_sampling_params(max_tokens, chat.default_sampling_params)
        outputs = chat.engine_client.generate(
            engine_input,
            sampling,
            request_id,
            **chat._engine_reasoning_kwargs(request, parser, template_kwargs, prompt_ids),
        )
        return Generation(request, prompt_ids, parser, outputs, prompt_text, continued is not None, rewritten)

    def decode(self, token_ids: list[int]) -> str:
        tokenizer = self._chat.renderer.tokenizer
        assert tokenizer is not None
        return tokenizer.decode(token_ids, skip_special_tokens=False)

    # -- continuing from held tokens ----------------------------------------------------------

    def _can_continue(self) -> bool:
        """Text-only chat-template models; Mistral's tokenizer and harmony render otherwise."""
        chat = self._chat
        renderer = chat.online_renderer
        return not (
            renderer.use_harmony
            or chat.model_config.enable_prompt_embeds
            or is_mistral_tokenizer(chat.renderer.tokenizer)
        )

    async def _continue(
        self, request: ChatCompletionRequest, held: HeldTokens
    ) -> tuple[list[int], str] | HistoryRewritten:
        """The held ids plus the tokens of what the template adds after the model's turn."""
        text = await self._render_text(request)
        try:
            suffix = suffix_after(held.prompt_text, self.decode(held.output_ids), text)
        except HistoryRewritten as exc:
            return exc
        tokenizer = self._chat.renderer.tokenizer
        assert tokenizer is not None
        return held.token_ids + list(tokenizer.encode(suffix, add_special_tokens=False)), text

    async def _render_text(self, request: ChatCompletionRequest) -> str:
        """The conversation as the template renders it, not tokenized: what vLLM's
        ``OnlineRenderer.preprocess_chat`` renders for a text-only chat request."""
        renderer = self._chat.online_renderer
        if request.tools is None or (
            request.tool_choice == "none" and renderer.exclude_tools_when_tool_choice_none
        ):
            tool_dicts = None
        else:
            tool_dicts = [tool.model_dump() for tool in request.tools]
        params = request.build_chat_params(
            renderer.chat_template, renderer.chat_template_content_format
        ).with_defaults(
            merge_kwargs(renderer.default_chat_template_kwargs, {"tools": tool_dicts, "tokenize": False})
        )
        _, prompt = await renderer.renderer.render_messages_async(request.messages, params)  # type: ignore[arg-type]
        text = prompt.get("prompt")
        if not isinstance(text, str):
            raise HistoryRewritten("the chat template did not render text")
        return text

    def _adjust(
        self, request: ChatCompletionRequest, tokenizer: Any, template_kwargs: dict[str, Any]
    ) -> ChatCompletionRequest:
        """What vLLM's renderer does to a request after rendering: the parsers' adjustments
        (structured outputs for a forced tool, special tokens kept for tool-call markers)."""
        cls: Any = self._chat.parser_cls
        if cls is None:
            return request
        if cls.always_adjust_request or cls.reasoning_parser_cls is not None or request.tool_choice != "none":
            parser = self._chat._make_parser(request, tokenizer, template_kwargs)
            request = cast(ChatCompletionRequest, parser.adjust_request(request=request))
        return request


def use_vllm_logging() -> None:
    """Send the plugin's log lines through vLLM's handlers, at INFO, like vLLM's own."""
    import logging

    ours, theirs = logging.getLogger("vllm_mcp_ext"), logging.getLogger("vllm")
    if not ours.handlers:
        for handler in theirs.handlers:
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False


def patch_tool_server_init() -> None:
    """Let vLLM's own ``init_tool_server`` see only the ``--tool-server`` forms it knows.

    vLLM would try to reach ``http://<value>/sse`` for an ``mcp.json`` path or a URL and fail at
    start-up; we hand it only ``demo`` and ``host:port`` entries (their stock meaning).
    """
    from vllm.entrypoints.launchers.api_server import app_state

    original: Callable[[Any], Awaitable[Any]] = app_state.init_tool_server
    if getattr(original, "_vllm_mcp_ext", False):
        return

    async def init_tool_server(args: Any) -> Any:
        from argparse import Namespace

        from vllm_mcp_ext.config import parse_tool_server_arg

        config = parse_tool_server_arg(getattr(args, "tool_server", None))
        native_args = Namespace(**{**vars(args), "tool_server": config.vllm_native})
        return await original(native_args)

    init_tool_server._vllm_mcp_ext = True  # type: ignore[attr-defined]
    app_state.init_tool_server = init_tool_server


async def stock_create_responses(body: dict[str, Any], raw_request: Any) -> Any:
    """vLLM's own ``POST /v1/responses``, for requests that carry no MCP tool."""
    from pydantic import ValidationError
    from vllm.entrypoints.openai.responses.api_router import create_responses
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest

    try:
        request = ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{where}: {err['msg']}", param=where or None) from None
    return await create_responses(request, raw_request=raw_request)


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
