"""One model turn, as it streams: parts in, events out, and what the turn asked for."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.loop.json_depth import JsonDepth
from vllm_mcp_ext.loop.tool_search import TOOL_SEARCH
from vllm_mcp_ext.loop.toolset import ExposedTool, ToolSet
from vllm_mcp_ext.types.parts import (
    Part,
    ReasoningDelta,
    TextDelta,
    TokenLogprob,
    ToolCallDelta,
    TurnEnd,
)

CallKind = Literal["mcp", "function", "unknown", "approval", "search"]


@dataclass
class PendingCall:
    """A tool call the model made in this turn.

    ``approval`` calls wait for the user: they stream nothing until their arguments are complete,
    then show as one `mcp_approval_request` item.
    """

    kind: CallKind
    exposed_name: str
    output_index: int  # -1 for an approval request until it is shown
    tool: ExposedTool | None = None
    call_id: str = field(default="")
    complete: bool = False
    approval_id: str | None = None
    pieces: list[str] = field(default_factory=list)  # argument text as streamed, joined on demand
    depth: JsonDepth = field(default_factory=JsonDepth)  # where the arguments' JSON stands

    @property
    def arguments(self) -> str:
        if len(self.pieces) > 1:
            self.pieces[:] = ["".join(self.pieces)]
        return self.pieces[0] if self.pieces else ""


class TurnBuilder:
    """Feeds parts of one turn into the response stream, in the order the model produced them.

    A call is complete as soon as its arguments are a whole JSON object (or the next call starts,
    or the turn ends); `take_complete` hands such calls to the loop so they can start at once.
    """

    def __init__(
        self,
        stream: ResponseStream,
        toolset: ToolSet,
        function_names: set[str],
        fallback_label: str,
        needs_approval: Callable[[ExposedTool], bool] = lambda tool: False,
        *,
        searching: bool = False,
        hold_answers: bool = False,
    ):
        self.stream = stream
        self.toolset = toolset
        self.function_names = function_names
        self.fallback_label = fallback_label
        self.needs_approval = needs_approval
        self.searching = searching  # a tool_search call runs in the loop (loop/tool_search.py)
        self.calls: list[PendingCall] = []
        self.end: TurnEnd | None = None
        self._by_index: dict[int, PendingCall] = {}
        self._completed: list[PendingCall] = []
        self._reasoning_index: int | None = None
        self._message_index: int | None = None
        self._held_text = ""  # whitespace not yet shown: no empty message items
        self._held_logprobs: tuple[TokenLogprob, ...] = ()
        self._text: list[str] = []
        self._reasoning: list[str] = []
        # An operator's answer guardrail (policy/guardrails.py) sees each message whole before
        # the client does: its text is held, and parts after it wait until it is checked.
        self.hold_answers = hold_answers
        self._answer: list[str] = []
        self._answer_logprobs: tuple[TokenLogprob, ...] = ()
        self.answer_to_check: str | None = None
        self._backlog: list[Part] = []
        self._closing = False

    def feed(self, part: Part) -> None:
        if self.answer_to_check is not None:
            self._backlog.append(part)
            return
        if self.hold_answers and self._closes_held_answer(part):
            self.answer_to_check = "".join(self._answer)
            self._backlog.append(part)
            return
        if isinstance(part, TextDelta) and self.hold_answers:
            self._answer.append(part.text)
            self._answer_logprobs += part.logprobs
        elif isinstance(part, ReasoningDelta):
            self._reasoning.append(part.text)
            if self._reasoning_index is None:
                self._close_message()
                self._reasoning_index = self.stream.open_reasoning()
            self.stream.reasoning_delta(self._reasoning_index, part.text)
        elif isinstance(part, TextDelta):
            self._text.append(part.text)
            self._show_text(part.text, part.logprobs)
        elif isinstance(part, ToolCallDelta):
            self._tool_delta(part)
        elif isinstance(part, TurnEnd):
            self.end = part

    @property
    def has_complete(self) -> bool:
        return bool(self._completed)

    def take_complete(self) -> list[PendingCall]:
        """Calls whose arguments became complete since the last time asked."""
        done, self._completed = self._completed, []
        return done

    def close(self) -> None:
        """End the turn's items; tool calls keep their items open until they ran. With a held
        answer, the turn ends once it is checked (`release`)."""
        if self.answer_to_check is not None or (self.hold_answers and "".join(self._answer).strip()):
            self.answer_to_check = self.answer_to_check or "".join(self._answer)
            self._closing = True
            return
        self._close_reasoning()
        self._close_message()
        for call in self.calls:
            self._complete(call)

    def assistant_message(self) -> dict[str, Any]:
        """The turn as the chat template will see it in the next turn's conversation."""
        # The message item starts at its first visible character (whitespace alone made none);
        # the model's history agrees, so a client that sends the items back rebuilds the same
        # conversation as previous_response_id loads.
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text).lstrip()}
        if self._reasoning:
            message["reasoning"] = "".join(self._reasoning)
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.exposed_name, "arguments": call.arguments},
                }
                for call in self.calls
            ]
        return message

    def release(self, text: str) -> None:
        """Show the held message as the guardrail passed it (``text``), then go on with the parts
        that waited for it; the turn closes if it was closing."""
        held = "".join(self._answer)
        logprobs = self._answer_logprobs if text == held else ()
        self._answer, self._answer_logprobs, self.answer_to_check = [], (), None
        self._text.append(text)
        self._show_text(text, logprobs)
        self._close_message()
        backlog, self._backlog = self._backlog, []
        for i, part in enumerate(backlog):
            self.feed(part)
            if self.answer_to_check is not None:
                self._backlog.extend(backlog[i + 1 :])
                return
        if self._closing:
            self._closing = False
            self.close()

    def _closes_held_answer(self, part: Part) -> bool:
        if not "".join(self._answer).strip():
            return False
        if isinstance(part, ReasoningDelta):
            return self._reasoning_index is None
        return isinstance(part, ToolCallDelta) and part.index not in self._by_index and bool(part.name)

    # -- internals ------------------------------------------------------------------------

    def _show_text(self, text: str, logprobs: tuple[TokenLogprob, ...] = ()) -> None:
        if self._message_index is None:
            self._held_text += text
            self._held_logprobs += logprobs
            if not self._held_text.strip():
                return
            self._close_reasoning()
            self._message_index = self.stream.open_message()
            # A message starts at its first visible character (Qwen3 writes "\n\n" after </think>).
            text, self._held_text = self._held_text.lstrip(), ""
            logprobs, self._held_logprobs = self._held_logprobs, ()
        self.stream.text_delta(self._message_index, text, logprobs)

    def _tool_delta(self, part: ToolCallDelta) -> None:
        call = self._by_index.get(part.index)
        if call is None:
            if not part.name:
                return  # arguments before a name: nothing to attach them to
            self._close_reasoning()
            self._close_message()
            for earlier in self.calls:
                self._complete(earlier)
            call = self._open_call(part.name)
            self._by_index[part.index] = call
            self.calls.append(call)
        if part.arguments and not call.complete:
            call.pieces.append(part.arguments)
            call.depth.feed(part.arguments)
            if call.kind == "function":
                self.stream.function_arguments_delta(call.output_index, part.arguments)
            elif call.kind not in ("approval", "search"):
                self.stream.mcp_arguments_delta(call.output_index, part.arguments)
            closing = call.depth.closed and part.arguments.rstrip().endswith("}")
            if closing and _is_whole_object(call.arguments):  # parsed once per top-level close
                self._complete(call)

    def _open_call(self, name: str) -> PendingCall:
        if self.searching and name == TOOL_SEARCH:
            index = self.stream.open_tool_search_call()
            return PendingCall("search", name, index, call_id=self.stream.call_id(index))
        tool = self.toolset.lookup(name)
        if tool is not None and self.needs_approval(tool):
            return PendingCall("approval", name, -1, tool, call_id=self.stream.new_call_id())
        if tool is not None:
            index = self.stream.open_mcp_call(tool.server_label, tool.name)
            return PendingCall("mcp", name, index, tool, call_id=self.stream.call_id(index))
        if name in self.function_names or not self.fallback_label:
            # no MCP server in the request: an unknown name goes back to the client, as on stock vLLM
            index = self.stream.open_function_call(name)
            return PendingCall("function", name, index, call_id=self.stream.call_id(index))
        index = self.stream.open_mcp_call(self.fallback_label, name)
        return PendingCall("unknown", name, index, call_id=self.stream.call_id(index))

    def _complete(self, call: PendingCall) -> None:
        if call.complete:
            return
        call.complete = True
        if call.kind == "function":
            self.stream.close_function_call(call.output_index, call.arguments)
        elif call.kind == "search":
            self.stream.close_tool_search_call(call.output_index, call.arguments)
        elif call.kind == "approval":
            assert call.tool is not None
            call.output_index, call.approval_id = self.stream.approval_request(
                call.tool.server_label, call.tool.name, call.arguments
            )
        else:
            self.stream.mcp_arguments_done(call.output_index, call.arguments)
        self._completed.append(call)

    def _close_reasoning(self) -> None:
        if self._reasoning_index is not None:
            self.stream.close_reasoning(self._reasoning_index)
            self._reasoning_index = None

    def _close_message(self) -> None:
        if self._message_index is not None:
            self.stream.close_message(self._message_index)
            self._message_index = None


def _is_whole_object(text: str) -> bool:
    """True once streamed arguments close their JSON object (no proper prefix of an object is
    itself a whole object, so this fires exactly at the closing brace)."""
    stripped = text.rstrip()
    if not stripped.endswith("}"):
        return False
    try:
        return isinstance(json.loads(stripped), dict)
    except (ValueError, RecursionError):  # too deep: judged (and refused) once the turn ends
        return False
