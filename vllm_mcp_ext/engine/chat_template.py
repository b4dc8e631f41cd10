"""Model turns for chat-template models: vLLM renders the conversation with the model's template,
the engine generates, and the configured tool and reasoning parsers turn text into parts.

A tool turn's prompt continues the token ids the engine already holds (``continuation.py``)
where the template allows; otherwise the conversation is rendered in full. Every call into vLLM
goes through `VllmChat` (``_compat.py``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from vllm_mcp_ext._compat import ChatCompletionRequest, RequestOutput, VllmChat
from vllm_mcp_ext.engine.continuation import HistoryRewritten, suffix_after
from vllm_mcp_ext.engine.fit import PromptSize
from vllm_mcp_ext.engine.media import has_media, without_tool_media
from vllm_mcp_ext.engine.parser import ChatTemplateParser
from vllm_mcp_ext.engine.truncation import drop_oldest
from vllm_mcp_ext.errors import ContextTooLong, InvalidRequest, NotFound
from vllm_mcp_ext.observe.trace import TurnTrace
from vllm_mcp_ext.observe.trace import current as current_trace
from vllm_mcp_ext.types.parts import (
    HeldTokens,
    Part,
    RawTurn,
    RenderedFrom,
    TextDelta,
    TokenLogprob,
    TurnEnd,
    TurnRequest,
    TurnUsage,
)

logger = logging.getLogger(__name__)


@dataclass
class Generation:
    """One engine request: the rendered prompt, its parser, and the output stream."""

    request: ChatCompletionRequest
    prompt_token_ids: list[int]
    parser: ChatTemplateParser
    outputs: AsyncIterator[RequestOutput]
    prompt_text: str | None = None  # the template's rendering of the conversation
    continued: bool = False  # the prompt extends the held tokens of the previous turn
    rewritten: str | None = None  # why held tokens could not be continued, if they were given
    source: RenderedFrom | None = None  # what the prompt text was rendered from


class ChatTemplateTurns:
    """`ModelTurns` for models rendered with their chat template."""

    def __init__(self, chat: VllmChat):
        self._chat = chat
        self.model_name = chat.model_name
        self._logged: set[str] = set()
        self._measured = MeasuredPrompts()  # first turns rendered to check that they fit
        self._windows = WindowVerdicts()  # templates that render a window as the whole conversation

    @property
    def takes_media(self) -> bool:
        return self._chat.takes_media

    def check_model(self, name: str | None) -> None:
        """A 404 for a model this server does not serve, as vLLM's own routes answer."""
        if name and not self._chat.serves(name):
            raise NotFound(f"The model `{name}` does not exist.", param="model", code="model_not_found")

    # -- fitting the context window (engine/fit.py's MeasuresPrompts) -------------------------

    @property
    def context_window(self) -> int:
        return self._chat.max_model_len

    async def prompt_size(self, turn: TurnRequest) -> PromptSize | None:
        """The first turn's prompt size, rendered as `start` renders it (which then takes this
        prompt instead of making it again): the held tokens continued where they are given, else
        the whole conversation. None for media (vLLM's full render)."""
        chat = self._chat
        if not chat.takes_media:  # as run_turn does
            turn = replace(turn, messages=without_tool_media(turn.messages))
        if not chat.renders_text or not chat.has_tokenizer or has_media(turn.messages):
            return None
        request = _chat_request(self.model_name, turn)
        chat.check_trusted(request)
        if turn.truncate:
            turn = await self._fit(turn)
            request = _chat_request(self.model_name, turn)
        request = chat.structured_answer(request, chat.template_kwargs(request))
        prompt = await self._prompt(request, turn.held)
        if prompt.rendered is None:
            return None
        self._measured.put(turn.request_id, turn.held, prompt)
        size = PromptSize(len(prompt.rendered[0]), 0, chat.max_model_len, len(turn.tools))
        if size.fits or not turn.tools:
            return size
        bare = await self._render_text_prompt(_chat_request(self.model_name, replace(turn, tools=[])))
        return size if bare is None else replace(size, tool_tokens=size.tokens - len(bare[0]))

    def count_tokens(self, text: str) -> int:
        return len(self._chat.encode(text))

    def cut_to_tokens(self, text: str, budget: int) -> tuple[str, int] | None:
        if len(text) <= budget:  # a token is at least one character
            return None
        ids = self._chat.encode(text)
        if len(ids) <= budget:
            return None
        return self._chat.decode(ids[:budget]), len(ids)

    async def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        record = TurnTrace(time.perf_counter()) if (trace := current_trace()) is not None else None
        if not self._chat.takes_media:  # tool result images and audio as their description
            turn = replace(turn, messages=without_tool_media(turn.messages))
        request = _chat_request(self.model_name, turn)
        self._chat.check_trusted(request)  # before anything renders: the request's own template
        if turn.truncate:
            turn = await self._fit(turn)
            request = _chat_request(self.model_name, turn)
        generation = await self.start(request, turn.request_id, turn.held)
        if generation.rewritten is not None:
            self._log_rewrite(generation.rewritten)
        parser = generation.parser
        output_ids: list[int] = []
        output_text: list[str] = []
        prompt_ids = generation.prompt_token_ids
        cached, finish = 0, None
        mark = time.perf_counter()
        if record is not None:
            record.render_s = mark - record.start
        async for result in generation.outputs:
            if record is not None:
                now = time.perf_counter()
                record.engine_s += now - mark
                record.outputs += 1
            cached = result.num_cached_tokens or cached
            for output in result.outputs:
                token_ids = list(output.token_ids)
                output_ids.extend(token_ids)
                output_text.append(output.text)
                finish = output.finish_reason
                parts = parser.feed(output.text, token_ids, result.prompt_token_ids, finish is not None)
                if turn.logprobs is not None and output.logprobs:
                    parts = self._with_logprobs(parts, token_ids, output.logprobs, turn.logprobs)
                for part in parts:
                    yield part
            if record is not None:
                mark = time.perf_counter()
                record.plugin_s += mark - now
        for part in parser.close(cut=finish == "length"):
            yield part
        usage = TurnUsage(
            prompt_tokens=len(prompt_ids),
            cached_tokens=cached,
            output_tokens=len(output_ids),
            reasoning_tokens=parser.reasoning_tokens(output_ids),
        )
        held = None
        if generation.prompt_text is not None:
            held = HeldTokens(generation.prompt_text, prompt_ids, output_ids, generation.source)
        if record is not None and trace is not None:
            record.end = time.perf_counter()
            record.prompt_tokens, record.cached_tokens = usage.prompt_tokens, cached
            record.output_tokens = usage.output_tokens
            record.continued, record.rewritten = generation.continued, generation.rewritten
            record.loaded_tools = turn.loaded_tools
            record.held_tokens = len(turn.held.token_ids) if generation.continued and turn.held else 0
            trace.turns.append(record)
        raw = RawTurn(generation.prompt_text or "", prompt_ids, "".join(output_text), output_ids)
        yield TurnEnd(finish_reason=finish, usage=usage, held=held, raw=raw)

    async def start(
        self, request: ChatCompletionRequest, request_id: str, held: HeldTokens | None = None
    ) -> Generation:
        """Render the request (continuing ``held``, the previous turn's tokens, where the
        template allows) and start generating."""
        chat = self._chat
        if not chat.has_parsers and request.tools:
            raise InvalidRequest(
                "tools need the server started with --enable-auto-tool-choice and --tool-call-parser",
                param="tools",
            )
        if not chat.has_tokenizer:
            raise InvalidRequest("MCP tools need the model's tokenizer (not --skip-tokenizer-init)")
        template_kwargs = chat.template_kwargs(request)
        request = chat.structured_answer(request, template_kwargs)
        parser = chat.make_parser(request, template_kwargs)
        media = has_media(request.messages)  # type: ignore[arg-type]
        if media and not chat.takes_media:
            raise InvalidRequest(
                f"model {self.model_name!r} is not a multimodal model: it takes no image, audio or "
                "image/audio file input",
                param="input",
            )
        rewritten = None
        if media and held is not None:
            # Held ids carry no multimodal data: re-render in full (vLLM's prefix cache still
            # serves the prefix, images included, by their hashes).
            rewritten, held = "the conversation holds media", None
        rendered, continued, source = None, False, None
        if chat.renders_text and not media:
            prompt = await self._turn_prompt(request, request_id, held)
            rendered, continued, source = prompt.rendered, prompt.continued, prompt.source
            rewritten = prompt.rewritten or rewritten
        engine_input: Any
        prompt_text: str | None
        if rendered is not None:
            prompt_ids, prompt_text = rendered
            chat.preflight(request)
            request = chat.adjust_request(request, template_kwargs)
            engine_input = chat.tokens_input(prompt_ids, prompt_text, request)
        else:
            engine_input, prompt_ids, prompt_text = await chat.render(request)
        max_tokens = chat.max_tokens(request, len(prompt_ids))
        if max_tokens <= 0:
            raise ContextTooLong(
                f"the conversation ({len(prompt_ids)} tokens) no longer fits the model's context "
                f"window ({chat.max_model_len} tokens)",
                param="input",
            )
        sampling = chat.sampling_params(request, max_tokens)
        outputs = chat.generate(
            engine_input, sampling, request_id, request, parser, template_kwargs, prompt_ids
        )
        return Generation(
            request,
            prompt_ids,
            ChatTemplateParser(
                parser, request, whole=lambda text: chat.parse_whole(request, template_kwargs, text)
            ),
            outputs,
            prompt_text,
            continued,
            rewritten,
            source if rendered is not None else None,
        )

    def _with_logprobs(self, parts: list[Part], token_ids: list[int], logprobs: Any, top: int) -> list[Part]:
        """The step's token logprobs on its first text part (tokens of tool calls and reasoning
        have none, as on OpenAI, where only output text has logprobs)."""
        for i, part in enumerate(parts):
            if isinstance(part, TextDelta):
                tokens = tuple(
                    self._token_logprob(token_id, ranked, top)
                    for token_id, ranked in zip(token_ids, logprobs, strict=False)
                )
                return [*parts[:i], replace(part, logprobs=tokens), *parts[i + 1 :]]
        return parts

    def _token_logprob(self, token_id: int, ranked: dict[int, Any], top: int) -> TokenLogprob:
        def text(tid: int, lp: Any) -> str:
            return lp.decoded_token if lp.decoded_token is not None else self._chat.decode([tid])

        sampled = ranked[token_id]
        alternatives = sorted(ranked.items(), key=lambda kv: kv[1].rank or 0)[:top]
        return TokenLogprob(
            text(token_id, sampled),
            max(sampled.logprob, -9999.0),
            tuple((text(tid, lp), max(lp.logprob, -9999.0)) for tid, lp in alternatives),
        )

    async def _fit(self, turn: TurnRequest) -> TurnRequest:
        """``truncation: "auto"``: the oldest messages dropped until the prompt fits the context
        window with room for one token (a prompt that cannot fit is left to the usual 400)."""
        limit = self._chat.max_model_len
        while True:
            text = await self._chat.render_text(_chat_request(self.model_name, turn))
            if text is None or len(self._chat.encode(text)) < limit:
                return turn
            fewer = drop_oldest(turn.messages)
            if fewer is None:
                return turn
            turn = replace(turn, messages=fewer, held=None)

    async def _turn_prompt(
        self, request: ChatCompletionRequest, request_id: str, held: HeldTokens | None
    ) -> Prompt:
        """The prompt measured before the response started, if it is this turn's; else made now."""
        source = self._source(request)  # before rendering: vLLM's render rewrites the messages
        return self._measured.take(request_id, source, held) or await self._prompt(request, held, source)

    async def _prompt(
        self, request: ChatCompletionRequest, held: HeldTokens | None, source: RenderedFrom | None = None
    ) -> Prompt:
        """The turn's prompt: the held tokens continued where the template allows, else the
        whole conversation rendered and tokenized."""
        source = source or self._source(request)  # before rendering: vLLM's render rewrites the messages
        rewritten = None
        if held is not None:
            continued = await self._continue(request, held, source)
            if not isinstance(continued, HistoryRewritten):
                return Prompt(continued, continued=True, source=source)
            rewritten = continued.reason
        return Prompt(await self._render_text_prompt(request), rewritten=rewritten, source=source)

    def _source(self, request: ChatCompletionRequest) -> RenderedFrom:
        messages = json.dumps(request.messages, default=str)
        return RenderedFrom(self._chat.render_settings(request), messages, len(request.messages))

    async def _render_text_prompt(self, request: ChatCompletionRequest) -> tuple[list[int], str] | None:
        """A text-only prompt rendered and tokenized as vLLM's chat path does it (template text,
        then the tokenizer without special tokens), on the event loop when it is small: vLLM's
        full render hops to its render thread twice, a few milliseconds on a busy server."""
        text = await self._chat.render_text(request, inline=_small(request.messages, None, request.tools))
        return None if text is None else (self._chat.encode(text), text)

    async def _continue(
        self, request: ChatCompletionRequest, held: HeldTokens, source: RenderedFrom | None = None
    ) -> tuple[list[int], str] | HistoryRewritten:
        """The held ids plus the tokens of what the template adds after the model's turn.

        Where the held prompt's messages start the conversation unchanged (same template, tools
        and kwargs), only a window renders: the message before the model's turn, the turn and
        what follows (with the system message and the last user message, which templates
        look for), once without the model's turn and once with it; what the second adds is
        what the whole conversation's render adds after the held prompt. A template is
        trusted with windows after its first window rendered exactly as the whole conversation
        did (checked once per template settings); one that renders a window otherwise, or
        cannot render one, always renders the whole conversation."""
        source = source or self._source(request)
        generated = self._chat.decode(held.output_ids)
        window = _window(request.messages, held.source, source)
        trusted = self._windows.get(source.settings) if window is not None else None
        if window is not None and trusted:
            rest = await self._render_after(request, *window)
            if rest is not None:
                try:
                    suffix = suffix_after("", generated, rest)
                except HistoryRewritten as exc:
                    return exc
                return held.token_ids + self._chat.encode(suffix), held.prompt_text + rest
        text = await self._chat.render_text(request, inline=_small(request.messages, held))
        if text is None:
            return HistoryRewritten("the chat template did not render text")
        try:
            suffix = suffix_after(held.prompt_text, generated, text)
        except HistoryRewritten as exc:
            return exc
        if window is not None and trusted is None:
            rest = await self._render_after(request, *window)
            self._windows.judge(source.settings, rest == text[len(held.prompt_text) :])
        return held.token_ids + self._chat.encode(suffix), text

    async def _render_after(
        self, request: ChatCompletionRequest, before: list[Any], window: list[Any]
    ) -> str | None:
        """What the template renders for ``window`` after what it renders for ``before`` (its
        start, with the generation prompt); None where it renders otherwise or not at all."""
        try:
            first = await self._chat.render_text(
                request.model_copy(update={"messages": before}), inline=_small(before, None, request.tools)
            )
            whole = await self._chat.render_text(
                request.model_copy(update={"messages": window}), inline=_small(window, None, request.tools)
            )
        except Exception:  # a template that refuses a part of a conversation: the whole one renders
            logger.debug("the chat template does not render a window of the conversation", exc_info=True)
            return None
        if first is None or whole is None or not whole.startswith(first):
            return None
        return whole[len(first) :]

    def _log_rewrite(self, reason: str) -> None:
        """Once per model and reason: the prefix cache then serves only part of each turn."""
        if reason in self._logged:
            return
        self._logged.add(reason)
        logger.info(
            "model %r: %s, so its tool turns re-render the whole conversation (the prefix cache "
            "serves only the part that renders the same)",
            self.model_name,
            reason,
        )


@dataclass(frozen=True)
class Prompt:
    """A turn's prompt as the plugin renders it: token ids and text (None where the template
    rendered no text: vLLM's full render then), whether it continues held tokens or why not,
    and what it was rendered from."""

    rendered: tuple[list[int], str] | None
    continued: bool = False
    rewritten: str | None = None
    source: RenderedFrom | None = None


class MeasuredPrompts:
    """First-turn prompts rendered before the response started (to check that they fit), kept
    for the turn itself; bounded, as a response may never start (a client gone, a 4xx)."""

    KEEP = 64

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, tuple[HeldTokens | None, Prompt]] = OrderedDict()

    def put(self, request_id: str, held: HeldTokens | None, prompt: Prompt) -> None:
        self._by_id[request_id] = (held, prompt)
        while len(self._by_id) > self.KEEP:
            self._by_id.popitem(last=False)

    def take(self, request_id: str, source: RenderedFrom, held: HeldTokens | None) -> Prompt | None:
        """The prompt, when the turn asks for the very conversation, settings and held tokens
        measured."""
        kept = self._by_id.pop(request_id, None)
        if kept is None:
            return None
        measured_held, prompt = kept
        return prompt if measured_held is held and prompt.source == source else None


class WindowVerdicts:
    """Per template settings: whether a window of the conversation renders as the whole one
    does (None: not checked yet); bounded."""

    KEEP = 256

    def __init__(self) -> None:
        self._by_settings: OrderedDict[str, bool] = OrderedDict()

    def get(self, settings: str) -> bool | None:
        return self._by_settings.get(settings)

    def judge(self, settings: str, renders_alike: bool) -> None:
        self._by_settings[settings] = renders_alike
        while len(self._by_settings) > self.KEEP:
            self._by_settings.popitem(last=False)


def _window(
    messages: list[Any], held: RenderedFrom | None, now: RenderedFrom
) -> tuple[list[Any], list[Any]] | None:
    """The messages a continuation renders instead of the whole conversation (without and with
    the model's turn and the tool results after it), when the held prompt's messages start it
    unchanged, only tool results follow the turn, and something is left out; else None."""
    if held is None or not held.extended_by(now):
        return None
    turn = held.count  # the model's turn follows the messages its prompt rendered
    if not all(isinstance(m, dict) for m in messages) or messages[turn].get("role") != "assistant":
        return None
    if any(m.get("role") != "tool" for m in messages[turn + 1 :]):
        # only tool results: a new question may change how a template renders the earlier
        # turns (the last query decides which turns keep their reasoning, say)
        return None
    start = turn - 1
    head = [messages[0]] if start > 0 and messages[0].get("role") in ("system", "developer") else []
    user = next((i for i in range(start - 1, len(head) - 1, -1) if messages[i].get("role") == "user"), None)
    if user is not None:
        head.append(messages[user])
    if len(head) + len(messages) - start >= len(messages):
        return None
    return head + messages[start:turn], head + messages[start:]


INLINE_RENDER_CHARS = 32_768  # what a turn renders anew, up to this size, renders on the event loop


def _small(messages: list[Any], held: HeldTokens | None, tools: list[Any] | None = None) -> bool:
    """Whether what the template must render anew is small enough to render on the event loop
    (well under a millisecond of template work): after a model turn, the held prompt and the
    messages added since; on a first turn, every message and the tools. Bounded, so a long
    conversation, a large tool output or a large tool list still renders off the loop."""
    if held is not None:
        size = len(held.prompt_text) + 4 * len(held.output_ids)
    else:
        size = sum(len(repr(tool)) for tool in tools or ())
    for message in reversed(messages):
        if not isinstance(message, dict):
            return False
        if held is not None and message.get("role") == "assistant":
            break
        content = message.get("content")
        size += len(content) if isinstance(content, str) else 0 if content is None else INLINE_RENDER_CHARS
        size += sum(len(repr(call)) for call in message.get("tool_calls") or ())
        if size > INLINE_RENDER_CHARS:
            return False
    return size <= INLINE_RENDER_CHARS


def _chat_request(model: str, turn: TurnRequest) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest(
            model=turn.model or model,  # a served LoRA adapter runs every turn on it
            messages=turn.messages,  # type: ignore[arg-type]
            tools=turn.tools or None,  # type: ignore[arg-type]
            tool_choice=turn.tool_choice if turn.tools else "none",  # type: ignore[arg-type]
            max_completion_tokens=turn.max_tokens,
            temperature=turn.temperature,
            top_p=turn.top_p,
            parallel_tool_calls=turn.parallel_tool_calls,
            response_format=turn.response_format,  # type: ignore[arg-type]
            reasoning_effort=turn.reasoning_effort,  # type: ignore[arg-type]
            logprobs=turn.logprobs is not None,
            top_logprobs=turn.logprobs or 0,
            stream=True,
            **{"seed": None, **turn.engine_options},
        )
    except ValueError as exc:
        raise InvalidRequest(f"invalid request for the model: {exc}") from None
