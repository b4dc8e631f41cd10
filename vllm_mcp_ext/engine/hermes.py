"""Hermes tool calls (``<tool_call>{"name": ..., "arguments": ...}</tool_call>``), parsed
incrementally: the same deltas as vLLM's ``Hermes2ProToolParser``, at a cost per delta that does
not grow with the length of the call.

vLLM's parser re-parses everything written so far on every delta: it searches the whole text for
the tags, copies and strips the open call's text, and runs ``json.loads`` on it to see whether it
is complete. A long argument (a file, a patch) then costs more per token the longer it gets. This
parser keeps what it has already decided and looks only at the new text, plus a bounded window
behind it; ``json.loads`` runs once per call, when a scanner says the JSON may have just closed.

The deltas are vLLM's, quirks included (content only before the first ``<tool_call>``, a call's
name taken from the first ``"name": "..."`` in its text, arguments streamed by length), so the
items and events a client sees do not change. ``tests/unit/test_hermes.py`` checks that on every
split of the scripted outputs and on long, unicode, escaped and malformed calls.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field

import regex

START = "<tool_call>"
END = "</tool_call>"
# The patterns of vLLM's parser (its `regex` module, so `\s` means the same).
NAME = regex.compile(r'"name"\s*:\s*"([^"]+)"')
ARGUMENTS = regex.compile(r'"arguments"\s*:\s*')
# Characters that move a JSON scanner: outside strings, and inside them.
_STRUCTURE = regex.compile(r'[{}\[\]"]')
_IN_STRING = regex.compile(r'["\\]')
_WINDOW = 64  # how far back to look at a time for the last non-space character
_TAIL = 1024  # characters kept as one string at the end of a call's text


def tag_overlap(text: str, tag: str) -> int:
    """Length of the longest proper prefix of ``tag`` that ends ``text`` (vLLM's
    ``partial_tag_overlap``)."""
    window = text[-(len(tag) - 1) :]
    at = window.find(tag[0])
    while at != -1:  # the earliest start is the longest overlap
        if tag.startswith(window[at:]):
            return len(window) - at
        at = window.find(tag[0], at + 1)
    return 0


@dataclass
class HermesDelta:
    """What one delta adds: text before the first call, and (index, name, arguments) pieces."""

    content: str = ""
    calls: list[tuple[int, str | None, str]] = field(default_factory=list)


class _Text:
    """A call's text as it arrives, in chunks: appending costs the chunk, reading a slice costs
    the slice (no copy of the whole text per delta). The last `_TAIL` characters are also kept
    as one string, since nearly every read is near the end."""

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._ends: list[int] = []  # end offset of each chunk
        self.length = 0
        self._tail = ""

    def append(self, text: str) -> None:
        if text:
            self.length += len(text)
            self._chunks.append(text)
            self._ends.append(self.length)
            tail = self._tail + text
            self._tail = tail[-_TAIL:] if len(tail) > 2 * _TAIL else tail

    def slice(self, start: int, end: int) -> str:
        if start < 0:
            start = 0
        if end > self.length:
            end = self.length
        if start >= end:
            return ""
        tail_start = self.length - len(self._tail)
        if start >= tail_start:
            return self._tail[start - tail_start : end - tail_start]
        i = bisect.bisect_right(self._ends, start)
        offset = self._ends[i] - len(self._chunks[i])
        pieces = []
        while offset < end:
            chunk = self._chunks[i]
            pieces.append(chunk[max(start - offset, 0) : end - offset])
            offset += len(chunk)
            i += 1
        return "".join(pieces)

    def char(self, pos: int) -> str:
        return self.slice(pos, pos + 1)


class _Call:
    """One ``<tool_call>`` region: its text, what was streamed of it, and scanner state.

    Offsets are into the region's text (what follows ``<tool_call>``). vLLM's view of it is
    ``tc_json``: the text up to ``</tool_call>`` (or, while open, without a trailing partial
    ``</tool_call>``), stripped; ``begin`` and ``stop`` delimit it here.
    """

    def __init__(self) -> None:
        self.text = _Text()
        self.closed_at: int | None = None  # where `</tool_call>` starts
        self.begin: int | None = None  # first non-space character
        self.name: str | None = None
        self.sent = 0  # length of the arguments streamed
        self.has_arguments = False  # vLLM recorded arguments for it
        self._quotes: list[int] = []  # the last three `"` (a name match starts at one of them)
        self._name_from = 0
        self._args_from = 0
        self._args_at: int | None = None  # where the `"arguments": ` match starts
        self._args_value: int | None = None  # where the arguments begin, once final
        # JSON scanner over the text: is the first top-level value closed, and where?
        self._scanned = 0
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._container: bool | None = None
        self._first_close: int | None = None
        self._complete_at: tuple[int, bool] | None = None  # json.loads's answer for one `stop`

    def append(self, text: str) -> None:
        base = self.text.length
        self.text.append(text)
        if self.begin is None:
            stripped = len(text) - len(text.lstrip())
            if stripped < len(text):
                self.begin = base + stripped
        quote = text.rfind('"')
        found: list[int] = []
        while quote != -1 and len(found) < 3:
            found.append(base + quote)
            quote = text.rfind('"', 0, quote)
        if found:
            self._quotes = (self._quotes + found[::-1])[-3:]
        if self.closed_at is None:
            self._scan(text, base)

    def close(self, at: int) -> None:
        self.closed_at = at

    # -- vLLM's view of the call ------------------------------------------------------------

    def stop(self) -> int:
        """End of ``tc_json``: the text before ``</tool_call>`` (or a partial one), stripped."""
        if self.closed_at is not None:
            end = self.closed_at
        else:
            end = self.text.length - tag_overlap(
                self.text.slice(self.text.length - len(END) + 1, self.text.length), END
            )
        return self._rstrip(max(self.begin or 0, 0), end)

    def _rstrip(self, floor: int, end: int) -> int:
        """The end of ``text[floor:end].rstrip()``."""
        while end > floor:
            start = max(floor, end - _WINDOW)
            kept = self.text.slice(start, end).rstrip()
            if kept:
                return start + len(kept)
            end = start
        return floor

    def complete(self, stop: int) -> bool:
        """vLLM's ``is_complete_json(tc_json)`` (a closed call always counts as complete)."""
        if self.closed_at is not None:
            return True
        if self.begin is None or stop <= self.begin or not self._container:
            # a name was found, so a scalar cannot be valid JSON: `"name"` followed by `:`
            return False
        if self._first_close != stop - 1:
            return False
        if self._complete_at is None or self._complete_at[0] != stop:
            try:
                json.loads(self.text.slice(self.begin, stop))
                self._complete_at = (stop, True)
            except json.JSONDecodeError:
                self._complete_at = (stop, False)
        return self._complete_at[1]

    def find_name(self, stop: int) -> str | None:
        begin = self.begin or 0
        start = max(self._name_from, begin)
        match = NAME.search(self.text.slice(start, stop))
        if match is not None:
            return str(match.group(1))
        # A match still to come starts at a quote, and has at most three before it ends.
        quotes = [q for q in self._quotes if q >= start]
        if len(self._quotes) == 3 and len(quotes) == 3:
            self._name_from = quotes[0]
        return None

    def arguments_start(self, stop: int) -> int | None:
        """Where the arguments begin in ``tc_json`` (after the first ``"arguments":``)."""
        if self._args_value is not None:
            return self._args_value
        begin = self.begin or 0
        if self._args_at is None:
            start = max(self._args_from, begin)
            match = ARGUMENTS.search(self.text.slice(start, stop))
            if match is None:
                quotes = [q for q in self._quotes if q >= start]
                if len(quotes) >= 2:  # a match still to come starts at one of the last two quotes
                    self._args_from = quotes[-2]
                return None
            self._args_at = start + match.start()
        match = ARGUMENTS.match(self.text.slice(self._args_at, stop))
        assert match is not None
        value = self._args_at + match.end()
        if value < stop:  # a character that is not space follows: the match is final
            self._args_value = value
        return value

    def arguments_end(self, start: int, stop: int, complete: bool) -> int:
        """vLLM strips the call's closing brace from complete JSON."""
        if complete and stop > start and self.text.char(stop - 1) == "}":
            return self._rstrip(start, stop - 1)
        return stop

    # -- JSON scanner -----------------------------------------------------------------------

    def _scan(self, text: str, base: int) -> None:
        """Track nesting over new text, to know when the first top-level value closes."""
        if self._first_close is not None or self._container is False:
            return
        i = 0
        if self._container is None:
            if self.begin is None:
                return
            i = self.begin - base
            self._container = text[i] in "{["
            if not self._container:
                return
        n = len(text)
        while i < n:
            if self._in_string:
                if self._escape:
                    self._escape = False
                    i += 1
                    continue
                match = _IN_STRING.search(text, i)
                if match is None:
                    return
                i = match.start()
                if text[i] == "\\":
                    self._escape = True
                else:
                    self._in_string = False
                i += 1
                continue
            match = _STRUCTURE.search(text, i)
            if match is None:
                return
            i = match.start()
            char = text[i]
            if char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    self._first_close = base + i
                    return
            i += 1


class IncrementalHermes:
    """The state of one turn's hermes tool calls, fed the text of each delta."""

    def __init__(self) -> None:
        self._before = ""  # text before the first `<tool_call>` not yet sent (a partial tag)
        self._started = False  # the first `<tool_call>` has been seen
        self.content_sent = 0  # characters of content sent (vLLM's `_sent_content_idx`)
        self.calls: list[_Call] = []
        self.seen = 0  # calls vLLM has state for (`len(prev_tool_call_arr)`)
        self._open: _Call | None = None
        self._gap = ""  # the tail of the text between calls, for a `<tool_call>` split in two
        self._active = 0  # the first call with something left to stream

    def feed(self, text: str) -> HermesDelta:
        delta = HermesDelta()
        if not self._started:
            text = self._content(text, delta)
        if self._started and text:
            self._regions(text)
        if self._started:
            self._stream_calls(delta.calls)
        return delta

    def remaining_arguments(self) -> str:
        """vLLM's ``get_remaining_unstreamed_args``: ``{}`` when the last call it knows has no
        arguments recorded (its default), else nothing."""
        if self.seen == 0:
            return ""
        return "" if self.calls[self.seen - 1].has_arguments else "{}"

    def _content(self, text: str, delta: HermesDelta) -> str:
        """Text before the first call is content, less a trailing partial ``<tool_call>``."""
        if not self._before and START[0] not in text:  # most tokens of an answer
            delta.content = text
            self.content_sent += len(text)
            return ""
        buffer = self._before + text
        at = buffer.find(START)
        if at == -1:
            keep = tag_overlap(buffer[-len(START) + 1 :], START)
            delta.content = buffer[: len(buffer) - keep]
            self._before = buffer[len(buffer) - keep :]
            self.content_sent += len(delta.content)
            return ""
        delta.content = buffer[:at]
        self.content_sent += at
        self._before = ""
        self._started = True
        self._open = self._new_call()
        return buffer[at + len(START) :]

    def _new_call(self) -> _Call:
        call = _Call()
        self.calls.append(call)
        return call

    def _regions(self, text: str) -> None:
        """Split new text into calls: a call runs to ``</tool_call>``; between calls only a
        ``<tool_call>`` matters."""
        while text:
            call = self._open
            if call is not None:
                carry = call.text.slice(call.text.length - len(END) + 1, call.text.length)
                at = (carry + text).find(END)
                if at == -1:
                    call.append(text)
                    return
                base = call.text.length - len(carry)  # where `carry + text` starts
                call.append(text[: max(at - len(carry), 0)])
                call.close(base + at)
                text = text[at + len(END) - len(carry) :]
                self._open = None
                self._gap = ""
                continue
            buffer = self._gap + text
            at = buffer.find(START)
            if at == -1:
                self._gap = buffer[-len(START) + 1 :]
                return
            self._open = self._new_call()
            text = buffer[at + len(START) :]

    def _stream_calls(self, out: list[tuple[int, str | None, str]]) -> None:
        """vLLM's loop over the calls: a name once found, then new argument text by length; a
        call without a name yet holds back the ones after it."""
        for index in range(self._active, len(self.calls)):
            call = self.calls[index]
            self.seen = max(self.seen, index + 1)
            stop = call.stop()
            if call.name is None:
                name = call.find_name(stop) if call.begin is not None and stop > call.begin else None
                if name is None:
                    return
                call.name = name
                out.append((index, name, ""))
            start = call.arguments_start(stop)
            if start is not None:
                end = call.arguments_end(start, stop, call.complete(stop))
                if end - start > call.sent:
                    out.append((index, None, call.text.slice(start + call.sent, end)))
                    call.sent = end - start
                    call.has_arguments = True
            if call.closed_at is not None and index == self._active:
                self._active += 1
