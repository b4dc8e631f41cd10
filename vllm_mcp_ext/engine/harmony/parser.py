"""`HarmonyParser`: a gpt-oss turn's token ids, as they stream, into typed parts.

openai-harmony's `StreamableParser` reads the ids one by one and knows, at each token, the
current message's channel, recipient and the text it added. Its channels become parts:

* ``analysis`` -> `ReasoningDelta` (a ``reasoning`` item);
* a message with a recipient (``commentary to=docs.search``) -> a tool call: its name as soon as
  the header is read, then the arguments as they arrive (``response.mcp_call_arguments.delta``);
* ``final``, and ``commentary`` without a recipient (a preamble) -> `TextDelta` (the message).

It works on token ids, never on text: a multi-byte character split across tokens comes out
whole, in the delta of the token that completes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openai_harmony import HarmonyError, Role, StreamableParser

from vllm_mcp_ext.engine.harmony.render import ToolNames, encoding
from vllm_mcp_ext.engine.parser import ResponsesParser
from vllm_mcp_ext.types.parts import Part, ReasoningDelta, TextDelta, ToolCallDelta


class HarmonyParser(ResponsesParser):
    """One assistant turn in harmony, from just after ``<|start|>assistant``."""

    def __init__(self, names: ToolNames, prefill: Sequence[int] = ()):
        self._names = names
        self._parser = StreamableParser(encoding(), role=Role.ASSISTANT)
        self._calls = 0  # tool calls so far: the next one's index
        self._message: tuple[str | None, str | None] | None = None  # (channel, recipient) now
        self._reasoning_ids = 0
        self._broken = False  # the model left the format; what follows is shown as text
        self._pending: list[Part] = []
        self._header: list[int] = []  # ids of the header being read
        enc = encoding()
        self._message_token = enc.encode("<|message|>", allowed_special="all")[0]
        self._end_tokens = frozenset(enc.encode("<|end|><|call|><|return|>", allowed_special="all"))
        self._in_content = False
        self._pending = self.feed_ids(prefill)  # a forced tool_choice's header, written for the model

    def feed(self, text: str, token_ids: Sequence[int], prompt_token_ids: Any, finished: bool) -> list[Part]:
        return self.feed_ids(token_ids)

    def feed_ids(self, token_ids: Sequence[int]) -> list[Part]:
        parts, self._pending = self._pending, []
        for token in token_ids:
            if self._broken:
                parts.append(TextDelta(encoding().decode([token])))
                continue
            try:
                self._parser.process(token)
            except HarmonyError:
                self._broken = True
                parts.append(TextDelta(encoding().decode([token])))
                continue
            parts.extend(self._after_token(token))
        return parts

    def _after_token(self, token: int) -> list[Part]:
        # Where the parser is, from the special tokens it just read (its own `state` serializes
        # the whole message each time it is asked: quadratic in a long turn).
        if token == self._message_token:
            self._in_content, self._header = True, []
        elif token in self._end_tokens:
            self._in_content, self._message = False, None
            return self._headless()  # a "header" that ended without <|message|>
        elif not self._in_content:
            self._header.append(token)
            return []
        parser = self._parser
        parts: list[Part] = []
        channel, recipient = parser.current_channel, parser.current_recipient
        if self._message is None:
            self._message = (channel, recipient)
            if recipient and recipient != "assistant":
                parts.append(ToolCallDelta(self._calls, name=self._names.exposed(recipient)))
                self._calls += 1
        delta = parser.last_content_delta or ""
        if recipient and recipient != "assistant":
            if delta:
                parts.append(ToolCallDelta(self._calls - 1, arguments=delta))
        elif channel == "analysis":
            self._reasoning_ids += 1
            if delta:
                parts.append(ReasoningDelta(delta))
        elif delta:
            parts.append(TextDelta(delta))
        return parts

    def close(self, cut: bool = False) -> list[Part]:
        """Text the model wrote outside any message (no ``<|channel|>...<|message|>``) is shown
        as text rather than dropped."""
        return self._headless()

    def _headless(self) -> list[Part]:
        enc = encoding()
        header, self._header = self._header, []
        if not header or any(enc.is_special_token(t) for t in header):
            return []  # a real header, cut short
        return [TextDelta(enc.decode(header))]

    def reasoning_tokens(self, output_ids: list[int]) -> int:
        return self._reasoning_ids
