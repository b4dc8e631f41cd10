"""`ResponsesParser`: a model's output, delta by delta, as typed parts.

The parts (``types/parts.py``) become Responses items and events in the loop's
`TurnBuilder` (``loop/turn.py``) on the response's one `ResponseStream` (``events/stream.py``):

    engine output deltas --ResponsesParser--> parts --TurnBuilder--> items and events

Only the first arrow depends on the model family; this module holds it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from vllm_mcp_ext._compat import hermes_progress
from vllm_mcp_ext.engine.hermes import IncrementalHermes
from vllm_mcp_ext.types.parts import Part, ReasoningDelta, TextDelta, ToolCallDelta

logger = logging.getLogger(__name__)

# A finished turn as vLLM's non-streaming parse reads it: reasoning, content, calls (name, arguments).
WholeTurn = tuple[str | None, str | None, list[tuple[str, str]]]


class ResponsesParser(ABC):
    """Turns one model turn's output deltas into reasoning, text and tool-call parts.

    One parser per model turn, per model family. In vLLM's own Responses code the same job is
    the ``response_parser`` (a ``vllm.parser.Parser``) that ``ParsableContext.append_output``
    (``vllm/entrypoints/openai/responses/context.py``) calls on a whole turn's text, plus the
    streaming-event builders of ``responses/streaming_events.py``. Here it is streamed: each
    engine delta is parsed as it arrives, so tool calls can start before the turn ends.
    """

    @abstractmethod
    def feed(self, text: str, token_ids: Sequence[int], prompt_token_ids: Any, finished: bool) -> list[Part]:
        """The parts one engine delta adds (the delta's text and token ids)."""

    def close(self, cut: bool = False) -> list[Part]:
        """Parts held back until the turn ended; ``cut``: the turn ended at its token limit."""
        return []

    def reasoning_tokens(self, output_ids: list[int]) -> int:
        """How many of the turn's output tokens were reasoning."""
        return 0


class ChatTemplateParser(ResponsesParser):
    """Chat-template models: vLLM's configured tool and reasoning `Parser`, delta by delta (or,
    with no parser, everything is text).

    With the hermes tool parser, vLLM's parser runs only until the reasoning is over; from there
    `IncrementalHermes` takes over, at a cost per token that does not grow with the call's
    length, with the same deltas (``engine/hermes.py``). Every other parser runs as is.
    """

    def __init__(
        self,
        parser: Any | None,
        request: Any,
        incremental: bool = True,
        whole: Callable[[str], WholeTurn] | None = None,
    ):
        self._parser = parser  # a vllm.parser.Parser, or None
        self._request = request  # the ChatCompletionRequest it parses for
        self._whole = whole  # vLLM's non-streaming parse of a finished turn, for a stream that found nothing
        self._raw: list[str] = []  # what the model wrote, for a turn the parser made nothing of
        self._parsed_any = False
        self._hermes: IncrementalHermes | None = None  # took over from vLLM's hermes parser
        self._passthrough = False  # took over with tool_choice none: text is text
        self._may_take_over = incremental and parser is not None  # False: vLLM's parser throughout

    def feed(self, text: str, token_ids: Sequence[int], prompt_token_ids: Any, finished: bool) -> list[Part]:
        self._raw.append(text)
        if self._parser is None:
            return [TextDelta(text)] if text else []
        if self._passthrough:
            self._parsed_any = self._parsed_any or bool(text)
            return [TextDelta(text)] if text else []
        if self._hermes is not None:
            return self._fast(text, finished)
        delta = self._parser.parse_delta(
            delta_text=text,
            delta_token_ids=token_ids,
            request=self._request,
            prompt_token_ids=prompt_token_ids,
            finished=finished,
        )
        if self._may_take_over and not finished:
            self._take_over()
        if delta is None:
            return []
        parts: list[Part] = []
        if delta.reasoning:
            parts.append(ReasoningDelta(delta.reasoning))
        if delta.content:
            parts.append(TextDelta(delta.content))
        for call in delta.tool_calls:
            function = call.function
            parts.append(
                ToolCallDelta(
                    index=call.index,
                    name=function.name if function else None,
                    arguments=(function.arguments or "") if function else "",
                )
            )
        self._parsed_any = self._parsed_any or bool(parts)
        return parts

    @property
    def incremental(self) -> bool:
        """Whether the incremental hermes parser (or a plain text pass) took over from vLLM's."""
        return self._hermes is not None or self._passthrough

    def _take_over(self) -> None:
        """Once vLLM's parser is past the reasoning and only its hermes parser would run,
        continue with the incremental one, if it reads the text so far the same way."""
        progress = hermes_progress(self._parser, self._request)
        if progress is None:
            return
        self._may_take_over = False
        if progress.mode == "none":
            self._passthrough = True
            return
        hermes = IncrementalHermes()
        hermes.feed(progress.text)
        mine = tuple((c.name, c.has_arguments, c.sent) for c in hermes.calls[: hermes.seen])
        if hermes.content_sent == progress.content_sent and mine == progress.calls:
            self._hermes = hermes

    def _fast(self, text: str, finished: bool) -> list[Part]:
        """vLLM's ``parse_delta`` in the tool phase, for hermes: content, then call pieces; on
        the last delta, the arguments vLLM would still append (``finalize_generation``)."""
        assert self._hermes is not None
        delta = self._hermes.feed(text)
        parts: list[Part] = [TextDelta(delta.content)] if delta.content else []
        calls = [ToolCallDelta(index, name, arguments) for index, name, arguments in delta.calls]
        if finished and calls and (rest := self._hermes.remaining_arguments()):
            last = calls[-1]
            calls[-1] = ToolCallDelta(last.index, last.name, last.arguments + rest)
        parts.extend(calls)
        self._parsed_any = self._parsed_any or bool(parts)
        return parts

    def close(self, cut: bool = False) -> list[Part]:
        raw = "".join(self._raw)
        if cut:
            # What the parser still holds at a token limit is an unfinished tool call (or
            # reasoning): never answer text.
            return []
        if self._parser is not None and not self._parsed_any and raw.strip():
            # Some of vLLM's parsers stream nothing for calls their whole-turn parse finds (a
            # `required` call as a JSON list for engine-based parsers; phi4_mini_json): the
            # calls as vLLM's non-streaming chat completions parse them.
            if self._whole is not None and (parts := self._whole_turn(raw)):
                return parts
            # e.g. a `<tool_call>` without valid JSON: the tool parser keeps it back, but nothing
            # the model wrote is dropped (vLLM's non-streaming chat returns it as content too).
            return [TextDelta(raw)]
        return []

    def _whole_turn(self, raw: str) -> list[Part]:
        assert self._whole is not None
        try:
            reasoning, content, calls = self._whole(raw)
        except Exception:  # a vLLM parser that fails on this text: keep the text, as before
            logger.debug("the whole-turn parse failed; the turn stays text", exc_info=True)
            return []
        if not calls:
            return []
        parts: list[Part] = [ReasoningDelta(reasoning)] if reasoning else []
        if content and content.strip():
            parts.append(TextDelta(content))
        parts.extend(ToolCallDelta(index, name, arguments) for index, (name, arguments) in enumerate(calls))
        return parts

    def reasoning_tokens(self, output_ids: list[int]) -> int:
        return self._parser.count_reasoning_tokens(output_ids) if self._parser is not None else 0
