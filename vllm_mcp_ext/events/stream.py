"""The one state object that turns loop progress into Responses events.

It owns ``sequence_number`` (no gaps), ``output_index`` (growing across turns) and the output
items, as openai SDK objects; each method appends the events it makes, which the loop takes with
`take()`. Every response object is a `snapshot` of it: the final one is the same whether the
client streams or not, and a background response is stored as its snapshots while it runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast, get_args

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallInProgressEvent,
    ResponseMcpListToolsCompletedEvent,
    ResponseMcpListToolsFailedEvent,
    ResponseMcpListToolsInProgressEvent,
    ResponseOutputItem,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseStreamEvent,
    ResponseTextConfig,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_compaction_compacting_event import ResponseCompactionCompactingEvent
from openai.types.responses.response_compaction_item import ResponseCompactionItem
from openai.types.responses.response_error import ResponseError
from openai.types.responses.response_output_item import (
    McpApprovalRequest,
    McpCall,
    McpListTools,
    McpListToolsTool,
)
from openai.types.responses.response_reasoning_item import Content as ReasoningContent
from openai.types.responses.response_tool_search_call import ResponseToolSearchCall
from openai.types.responses.response_tool_search_output_item import ResponseToolSearchOutputItem
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from openai.types.shared.reasoning import Reasoning

from vllm_mcp_ext.events.deltas import delta_event
from vllm_mcp_ext.events.elicitation import McpElicitationRequest
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.events.progress import McpCallProgress, ResponseMcpCallProgressEvent
from vllm_mcp_ext.types.parts import RawTurn, TokenLogprob, TurnUsage

if TYPE_CHECKING:
    from vllm_mcp_ext.types.request import ResponsesRequest  # the fields snapshots repeat

# A failed response's ``error.code`` is one of a closed set in the Responses API.
RESPONSE_ERROR_CODES = frozenset(get_args(ResponseError.model_fields["code"].annotation))


def response_error_code(code: str | None, status: int) -> str:
    """``code`` where the Responses API has it; otherwise what it calls a client's error
    (``invalid_prompt``) or the server's (``server_error``). The message keeps the detail."""
    if code is not None and code in RESPONSE_ERROR_CODES:
        return code
    return "invalid_prompt" if status < 500 else "server_error"


@dataclass
class Usage:
    """Token counts summed over a response's turns; `model` gives the SDK's `ResponseUsage`."""

    input: int = 0
    cached: int = 0
    output: int = 0
    reasoning: int = 0

    def add(self, turn: TurnUsage) -> None:
        self.input += turn.prompt_tokens
        self.cached += turn.cached_tokens
        self.output += turn.output_tokens
        self.reasoning += turn.reasoning_tokens

    def model(self) -> ResponseUsage:
        return ResponseUsage(
            input_tokens=self.input,
            input_tokens_details=InputTokensDetails(cached_tokens=self.cached, cache_write_tokens=0),
            output_tokens=self.output,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=self.reasoning),
            total_tokens=self.input + self.output,
        )


class ResponseStream:
    def __init__(self, request: ResponsesRequest):
        self.request = request
        self.output: list[ResponseOutputItem] = []
        self.usage = Usage()
        self.final: Response | None = None
        self._seq = 0
        self._pending: list[ResponseStreamEvent] = []
        # output_index -> text deltas so far (message or reasoning); joined once, at the end:
        # appending to one string would copy it on every delta (quadratic in the output length)
        self._text: dict[int, list[str]] = {}
        self._logprobs: dict[int, list[TokenLogprob]] = {}  # per open message, with logprobs asked for
        # vLLM's `enable_response_messages`: every turn's rendered prompt and output, with ids
        self.input_messages: list[dict[str, Any]] = []
        self.output_messages: list[dict[str, Any]] = []

    # -- plumbing -----------------------------------------------------------------------

    @staticmethod
    def new_call_id() -> str:
        return new_id("call")

    def call_id(self, index: int) -> str:
        """The id that ties an open call item to its result: ``call_id`` for function calls
        and tool searches."""
        item = self.output[index]
        if isinstance(item, ResponseFunctionToolCall | ResponseToolSearchCall):
            value = item.call_id
        else:
            value = item.id
        assert value is not None
        return value

    @property
    def started(self) -> bool:
        return self._seq > 0

    @property
    def done(self) -> bool:
        return self.final is not None

    def take(self) -> list[ResponseStreamEvent]:
        events, self._pending = self._pending, []
        return events

    def _emit(self, cls: type, **fields: Any) -> None:
        self._pending.append(cls(sequence_number=self._seq, **fields))
        self._seq += 1

    def _emit_delta(self, cls: type[ResponseStreamEvent], **fields: Any) -> None:
        """A per-token event (`events.deltas`): every field given, of its type."""
        self._pending.append(delta_event(cls, sequence_number=self._seq, **fields))
        self._seq += 1

    def _open(self, item: ResponseOutputItem) -> int:
        index = len(self.output)
        self.output.append(item)
        self._emit(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            item=item.model_copy(deep=True),
            output_index=index,
        )
        return index

    def _add_own_item(self, item: Any) -> int:
        """An item type of our own (only for a request that opted in), added and done at once:
        the SDK's event types take it without validation, which knows only OpenAI's items."""
        index = len(self.output)
        self.output.append(item)
        for cls, kind in (
            (ResponseOutputItemAddedEvent, "response.output_item.added"),
            (ResponseOutputItemDoneEvent, "response.output_item.done"),
        ):
            event = cls.model_construct(sequence_number=self._seq, type=kind, item=item, output_index=index)
            self._pending.append(event)  # type: ignore[arg-type]
            self._seq += 1
        return index

    def _close(self, index: int, item: ResponseOutputItem) -> None:
        self.output[index] = item
        self._emit(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            item=item,
            output_index=index,
        )

    def snapshot(self, status: str, *, incomplete_reason: str | None = None, error: Any = None) -> Response:
        t = self.request
        done = status in ("completed", "incomplete", "failed")
        extras: dict[str, Any] = {**_OPEN_RESPONSES_EXTRAS, "store": t.store}
        if t.conversation_id is not None:
            extras["conversation"] = {"id": t.conversation_id}
        if t.response_messages:
            extras.update(
                input_messages=list(self.input_messages), output_messages=list(self.output_messages)
            )
        response = Response(
            id=t.id,
            object="response",
            created_at=t.created_at,
            completed_at=int(time.time()) if status == "completed" else None,
            status=status,  # type: ignore[arg-type]
            model=t.model,
            output=[],
            tools=t.tools,
            tool_choice=t.shown_tool_choice,
            parallel_tool_calls=t.parallel_tool_calls,
            instructions=t.instructions,
            metadata=t.metadata,
            temperature=t.temperature if t.temperature is not None else 1.0,
            top_p=t.top_p if t.top_p is not None else 1.0,
            max_output_tokens=t.max_output_tokens,
            max_tool_calls=t.max_tool_calls,
            previous_response_id=t.previous_response_id,
            incomplete_details=_incomplete(incomplete_reason),
            error=error,
            usage=self.usage.model() if done else None,
            background=t.background,
            truncation=t.truncation,
            service_tier="default",
            text=ResponseTextConfig.model_validate({"verbosity": "medium", **t.text}),
            reasoning=Reasoning.model_validate(t.reasoning) if t.reasoning is not None else None,
            top_logprobs=t.top_logprobs,
            user=t.user,
            safety_identifier=None,
            prompt_cache_key=t.prompt_cache_key,
            **extras,
        )
        response.output = list(self.output)  # typed already; our own item types pass too
        return response

    def add_raw_turn(self, raw: RawTurn) -> None:
        """One turn as the engine saw it, in vLLM's ``raw_message_tokens`` shape."""
        kind = "raw_message_tokens"
        self.input_messages.append({"type": kind, "message": raw.prompt, "tokens": raw.prompt_ids})
        self.output_messages.append({"type": kind, "message": raw.output, "tokens": raw.output_ids})

    def cancelled(self) -> Response:
        """The response as it stands when cancelled: unfinished items marked incomplete."""
        response = self.snapshot("cancelled")
        response.output = [
            item.model_copy(update={"status": "incomplete"})
            if getattr(item, "status", None) in _UNFINISHED
            else item
            for item in response.output
        ]
        return response

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        snap = self.snapshot("in_progress")
        self._emit(ResponseCreatedEvent, type="response.created", response=snap)
        self._emit(ResponseInProgressEvent, type="response.in_progress", response=snap)

    def finish(self, incomplete_reason: str | None = None) -> Response:
        if incomplete_reason is None:
            self.final = self.snapshot("completed")
            self._emit(ResponseCompletedEvent, type="response.completed", response=self.final)
        else:
            self.final = self.snapshot("incomplete", incomplete_reason=incomplete_reason)
            self._emit(ResponseIncompleteEvent, type="response.incomplete", response=self.final)
        return self.final

    def fail(self, code: str, message: str) -> Response:
        code = code if code in RESPONSE_ERROR_CODES else "server_error"
        self.final = self.snapshot("failed", error={"code": code, "message": message})
        self._emit(ResponseFailedEvent, type="response.failed", response=self.final)
        return self.final

    # -- mcp_list_tools -------------------------------------------------------------------

    def list_tools(self, server_label: str, tools: list[McpListToolsTool], error: str | None) -> None:
        item = McpListTools(id=new_id("mcpl"), type="mcp_list_tools", server_label=server_label, tools=[])
        index = self._open(item)
        ids = {"item_id": item.id, "output_index": index}
        self._emit(ResponseMcpListToolsInProgressEvent, type="response.mcp_list_tools.in_progress", **ids)
        if error is None:
            self._emit(ResponseMcpListToolsCompletedEvent, type="response.mcp_list_tools.completed", **ids)
        else:
            self._emit(ResponseMcpListToolsFailedEvent, type="response.mcp_list_tools.failed", **ids)
        done = item.model_copy(update={"tools": tools, "error": error})
        self._close(index, done)

    # -- reasoning and message text -------------------------------------------------------

    def open_reasoning(self) -> int:
        item = ResponseReasoningItem(
            id=new_id("rs"), type="reasoning", summary=[], content=[], status="in_progress"
        )
        index = self._open(item)
        self._text[index] = []
        return index

    def reasoning_delta(self, index: int, delta: str) -> None:
        self._text[index].append(delta)
        self._emit_delta(
            ResponseReasoningTextDeltaEvent,
            type="response.reasoning_text.delta",
            item_id=self.output[index].id,
            output_index=index,
            content_index=0,
            delta=delta,
        )

    def close_reasoning(self, index: int) -> None:
        text = "".join(self._text.pop(index))
        item = self.output[index]
        self._emit(
            ResponseReasoningTextDoneEvent,
            type="response.reasoning_text.done",
            item_id=item.id,
            output_index=index,
            content_index=0,
            text=text,
        )
        content = [ReasoningContent(type="reasoning_text", text=text)]
        self._close(index, item.model_copy(update={"content": content, "status": "completed"}))

    def open_message(self) -> int:
        item = ResponseOutputMessage(
            id=new_id("msg"), type="message", role="assistant", content=[], status="in_progress"
        )
        index = self._open(item)
        self._text[index] = []
        self._emit(
            ResponseContentPartAddedEvent,
            type="response.content_part.added",
            item_id=item.id,
            output_index=index,
            content_index=0,
            part=_output_text(""),
        )
        return index

    def text_delta(self, index: int, delta: str, logprobs: tuple[TokenLogprob, ...] = ()) -> None:
        self._text[index].append(delta)
        fields = {"item_id": self.output[index].id, "output_index": index, "content_index": 0, "delta": delta}
        if logprobs:
            self._logprobs.setdefault(index, []).extend(logprobs)
            lps = [_text_logprob(lp) for lp in logprobs]  # made SDK models by validation
            self._emit(ResponseTextDeltaEvent, type="response.output_text.delta", logprobs=lps, **fields)
        else:
            self._emit_delta(ResponseTextDeltaEvent, type="response.output_text.delta", logprobs=[], **fields)

    def close_message(self, index: int, status: str = "completed") -> None:
        text = "".join(self._text.pop(index))
        logprobs = self._logprobs.pop(index, [])
        item = self.output[index]
        ids = {"item_id": item.id, "output_index": index, "content_index": 0}
        done_logprobs = [_text_logprob(lp) for lp in logprobs]
        self._emit(
            ResponseTextDoneEvent, type="response.output_text.done", text=text, logprobs=done_logprobs, **ids
        )
        part = _output_text(text, logprobs)
        self._emit(ResponseContentPartDoneEvent, type="response.content_part.done", part=part, **ids)
        self._close(index, item.model_copy(update={"content": [part], "status": status}))

    # -- mcp_call -------------------------------------------------------------------------

    def open_mcp_call(
        self,
        server_label: str,
        name: str,
        approval_request_id: str | None = None,
        *,
        elicitation_request_id: str | None = None,
    ) -> int:
        """``elicitation_request_id``: the call goes on with the user's answer to that question
        (a field of our own, for a request that opted in: `events.elicitation`)."""
        extra: dict[str, Any] = {}
        if elicitation_request_id is not None:
            extra["elicitation_request_id"] = elicitation_request_id
        item = McpCall(
            id=new_id("mcp"),
            type="mcp_call",
            server_label=server_label,
            name=name,
            arguments="",
            status="in_progress",
            approval_request_id=approval_request_id,
            **extra,
        )
        index = self._open(item)
        self._emit(
            ResponseMcpCallInProgressEvent,
            type="response.mcp_call.in_progress",
            item_id=item.id,
            output_index=index,
        )
        return index

    def open_whole_mcp_call(
        self,
        server_label: str,
        name: str,
        arguments: str,
        approval_request_id: str | None = None,
        *,
        elicitation_request_id: str | None = None,
    ) -> int:
        """An ``mcp_call`` item whose arguments are known whole (a call resumed with the user's
        answer): opened, its arguments streamed in one delta, and done."""
        index = self.open_mcp_call(
            server_label, name, approval_request_id, elicitation_request_id=elicitation_request_id
        )
        self.mcp_arguments_delta(index, arguments)
        self.mcp_arguments_done(index, arguments)
        return index

    def mcp_arguments_delta(self, index: int, delta: str) -> None:
        self._emit_delta(
            ResponseMcpCallArgumentsDeltaEvent,
            type="response.mcp_call_arguments.delta",
            item_id=self.output[index].id,
            output_index=index,
            delta=delta,
        )

    def mcp_arguments_done(self, index: int, arguments: str) -> None:
        item = self.output[index]
        self.output[index] = item.model_copy(update={"arguments": arguments, "status": "calling"})
        self._emit(
            ResponseMcpCallArgumentsDoneEvent,
            type="response.mcp_call_arguments.done",
            item_id=item.id,
            output_index=index,
            arguments=arguments,
        )

    def close_mcp_call(self, index: int, output: str | None, error: Any = None) -> None:
        item = self.output[index]
        ids = {"item_id": item.id, "output_index": index}
        if error is None:
            self._emit(ResponseMcpCallCompletedEvent, type="response.mcp_call.completed", **ids)
            status = "completed"
        else:
            self._emit(ResponseMcpCallFailedEvent, type="response.mcp_call.failed", **ids)
            status = "failed"
        done = item.model_copy(update={"output": output, "error": error, "status": status})
        self._close(index, done)

    def mcp_call_progress(self, index: int, progress: McpCallProgress) -> None:
        """A running call's progress (only for a request that opted in: `events.progress`)."""
        item = self.output[index]
        if item.type != "mcp_call" or item.status not in _UNFINISHED:
            return  # a late notification: the item is closed
        self.output[index] = item.model_copy(update={"progress": progress})
        self._emit(
            ResponseMcpCallProgressEvent,
            type="response.mcp_call.progress",
            item_id=item.id,
            output_index=index,
            **progress.model_dump(),
        )

    def close_mcp_call_skipped(self, index: int) -> None:
        """A call past ``max_tool_calls``: it never ran."""
        item = self.output[index]
        self._close(index, item.model_copy(update={"status": "incomplete"}))

    def pause_mcp_call(self, index: int) -> None:
        """A call that waits for the user's answer to its server's question: it goes on in the
        response that brings the answer, as a new ``mcp_call`` item (`loop.elicitation`)."""
        item = self.output[index]
        self._close(index, item.model_copy(update={"status": "incomplete"}))

    def elicitation_request(self, item: McpElicitationRequest) -> int:
        return self._add_own_item(item)

    # -- approvals ------------------------------------------------------------------------

    def approval_request(self, server_label: str, name: str, arguments: str) -> tuple[int, str]:
        """A call that waits for the user: no events of its own, the item added and done."""
        item = McpApprovalRequest(
            id=new_id("mcpr"),
            type="mcp_approval_request",
            server_label=server_label,
            name=name,
            arguments=arguments,
        )
        index = self._open(item)
        self._close(index, item)
        return index, item.id

    # -- client function calls ------------------------------------------------------------

    def open_function_call(self, name: str) -> int:
        """``name`` as the model saw it; a namespace tool's call is reported by its own name and
        namespace, as vLLM reports it."""
        namespace, name = self.request.namespaced.get(name, (None, name))
        item = ResponseFunctionToolCall(
            id=new_id("fc"),
            type="function_call",
            call_id=new_id("call"),
            name=name,
            namespace=namespace,
            arguments="",
            status="in_progress",
        )
        return self._open(item)

    def function_arguments_delta(self, index: int, delta: str) -> None:
        self._emit_delta(
            ResponseFunctionCallArgumentsDeltaEvent,
            type="response.function_call_arguments.delta",
            item_id=self.output[index].id,
            output_index=index,
            delta=delta,
        )

    def close_function_call(self, index: int, arguments: str) -> None:
        item = cast(ResponseFunctionToolCall, self.output[index])
        self._emit(
            ResponseFunctionCallArgumentsDoneEvent,
            type="response.function_call_arguments.done",
            item_id=item.id,
            output_index=index,
            arguments=arguments,
            name=item.name,
        )
        self._close(index, item.model_copy(update={"arguments": arguments, "status": "completed"}))

    # -- compaction (loop/compaction.py) ---------------------------------------------------

    def open_compaction(self) -> int:
        item = ResponseCompactionItem(id=new_id("cmp"), type="compaction", encrypted_content="")
        index = self._open(item)
        self._emit(
            ResponseCompactionCompactingEvent,
            type="response.compaction.compacting",
            item_id=item.id,
            output_index=index,
        )
        return index

    def close_compaction(self, index: int, encrypted_content: str) -> None:
        item = self.output[index]
        self._close(index, item.model_copy(update={"encrypted_content": encrypted_content}))

    # -- tool search (loop/tool_search.py) -------------------------------------------------

    def open_tool_search_call(self) -> int:
        item = ResponseToolSearchCall(
            id=new_id("ts"),
            type="tool_search_call",
            call_id=new_id("call"),
            arguments={},
            execution="server",
            status="in_progress",
        )
        return self._open(item)

    def close_tool_search_call(self, index: int, arguments: str) -> None:
        item = cast(ResponseToolSearchCall, self.output[index])
        try:
            parsed: Any = json.loads(arguments or "{}")
        except (ValueError, RecursionError):
            parsed = {"query": arguments}
        self._close(index, item.model_copy(update={"arguments": parsed, "status": "completed"}))

    def tool_search_output(self, call_id: str, tools: list[Any]) -> None:
        """The tools a search loaded: one item, added and done."""
        item = ResponseToolSearchOutputItem(
            id=new_id("tso"),
            type="tool_search_output",
            call_id=call_id,
            execution="server",
            status="completed",
            tools=tools,
        )
        self._close(self._open(item), item)


_UNFINISHED = ("in_progress", "calling", "searching")

# Open Responses requires these; the SDK's model has no field for them (its models keep extras).
_OPEN_RESPONSES_EXTRAS: dict[str, Any] = {"presence_penalty": 0.0, "frequency_penalty": 0.0}


def _incomplete(reason: str | None) -> IncompleteDetails | None:
    # Our reasons "max_tool_calls" and "max_turns" are outside the SDK's Literal; the wire field
    # is a free string (Open Responses), and the SDK parses it without complaint.
    return IncompleteDetails.model_construct(reason=reason) if reason else None


def _output_text(text: str, logprobs: list[TokenLogprob] | None = None) -> ResponseOutputText:
    return ResponseOutputText.model_validate(
        {
            "type": "output_text",
            "text": text,
            "annotations": [],
            "logprobs": [_text_logprob(lp) for lp in logprobs or []],
        }
    )


def _text_logprob(lp: TokenLogprob) -> dict[str, Any]:
    """As an ``output_text`` part and the text delta and done events carry it (with each token's
    UTF-8 bytes, which Open Responses requires in the events too)."""

    def utf8(token: str) -> list[int]:
        return list(token.encode("utf-8", errors="replace"))

    top = [{"token": token, "bytes": utf8(token), "logprob": logprob} for token, logprob in lp.top]
    return {"token": lp.token, "bytes": utf8(lp.token), "logprob": lp.logprob, "top_logprobs": top}
