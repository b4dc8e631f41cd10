"""`ParsableContext`: the conversation the loop renders, parses and extends, turn by turn.

A response continues a conversation either from the stored state of ``previous_response_id`` or
from earlier output items the client sends back as ``input`` (stateless replay). Both end in the
same context: chat messages for the template, the tool lists already shown (so they are not
fetched again), the calls of the last turn still waiting for an approval, this request's
instructions and the tokens the engine holds after the last turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mcp import types
from openai.types.responses.response_output_item import McpListToolsTool

from vllm_mcp_ext.engine.media import message_content
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.loop.approvals import ApprovalAnswer, PendingApproval, denial_text
from vllm_mcp_ext.loop.compaction import decode, summary_message
from vllm_mcp_ext.loop.elicitation import (
    NOT_ANSWERED as NOT_ELICITED,
)
from vllm_mcp_ext.loop.elicitation import (
    ElicitationReply,
    PendingElicitation,
    check_reply,
    reply_of,
)
from vllm_mcp_ext.loop.toolset import tool_from_listing
from vllm_mcp_ext.types.content import flatten_text
from vllm_mcp_ext.types.parts import HeldTokens

NOT_ANSWERED = "The user did not approve this tool call; it did not run."
NOT_FINISHED = "This tool call did not finish."


@dataclass
class ListedServer:
    """An `mcp_list_tools` item in the conversation: its tools stay in the model's context."""

    label: str
    tools: tuple[types.Tool, ...]
    allowed_key: str | None  # the ``allowed_tools`` it was listed for; None when replayed


@dataclass
class WaitingCall:
    """A tool call of the last model turn whose result is not in the conversation yet."""

    call_id: str
    result: str | list[dict[str, Any]] | None = None  # a list: text and media
    approval: PendingApproval | None = None
    elicitation: PendingElicitation | None = None  # it runs, waiting for the user's answer


@dataclass
class ParsableContext:
    """The conversation of one response: what the model saw so far and what it still waits for.

    It corresponds to ``ParsableContext`` in vLLM's own Responses code
    (``vllm/entrypoints/openai/responses/context.py``), the context of a chat-template model
    there: the input items, appended to with each turn's parsed output (``append_output``) and
    tool results (``append_tool_output``), rendered again for the next turn
    (``render_for_completion``). Here the same roles are `append_turn`, `give_result` and
    `model_messages`; the turn's output is parsed by a `ResponsesParser` on the way, and the
    next prompt continues the engine's `held` tokens where the chat template allows.

    Stored between responses with `to_json` (the instructions and held tokens are not: they
    belong to one request, as on OpenAI).
    """

    messages: list[dict[str, Any]] = field(default_factory=list)  # without the instructions
    listed: dict[str, ListedServer] = field(default_factory=dict)
    waiting: list[WaitingCall] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    # approvals answered by this request's input, to run now
    answers: list[ApprovalAnswer] = field(default_factory=list)
    # answers to the questions of servers whose calls wait (loop.elicitation), to give them now
    replies: list[ElicitationReply] = field(default_factory=list)
    instructions: str | None = None  # this request's, rendered first; never carried over
    held: HeldTokens | None = None  # what the engine holds after the last turn of this response
    # the conversation's prefix key: the same for every response of one chain of
    # previous_response_id (the first one's id) or of one conversation (its id); routers send
    # the chain's turns to one replica by it (docs/scale-out.md)
    session: str | None = None
    _reasoning: str | None = None
    # replayed: the mcp_call item that started an approved call that paused -> its call id
    _started: dict[str, str] = field(default_factory=dict)
    # replayed mcp_call items without a result (paused, or skipped): their call ids
    _unfinished: set[str] = field(default_factory=set)

    # -- rendering and extending ----------------------------------------------------------

    def model_messages(self) -> list[dict[str, Any]]:
        """The conversation for the chat template: this request's instructions first (those of
        earlier responses are not carried over, as on OpenAI)."""
        system = [{"role": "system", "content": self.instructions}] if self.instructions else []
        return system + self.messages

    def append_turn(self, message: dict[str, Any], held: HeldTokens | None) -> None:
        """The model's turn, as the next turn's prompt shows it, and the tokens it leaves held."""
        self.messages.append(message)
        self.held = held

    # -- what waits -----------------------------------------------------------------------

    @property
    def resuming(self) -> bool:
        """This request answers calls of the last turn (approvals, questions)."""
        return bool(self.answers or self.replies)

    def pending(self) -> dict[str, PendingApproval]:
        return {w.approval.approval_id: w.approval for w in self.waiting if w.approval and w.result is None}

    def asking(self) -> dict[str, PendingElicitation]:
        """The calls that wait for the user's answer to their server's question, by question id."""
        return {
            w.elicitation.elicitation_id: w.elicitation
            for w in self.waiting
            if w.elicitation is not None and w.result is None
        }

    def ask_again(self, call_id: str, pending: PendingElicitation | None) -> None:
        """The call's server asked (another) question; None: it is answered. An approved
        call that asks waits for its answer, no longer for an approval."""
        for call in self.waiting:
            if call.call_id == call_id:
                call.elicitation = pending
                call.approval = None

    def wait_for(self, calls: list[WaitingCall]) -> None:
        self.waiting = calls
        self.flush()

    def give_result(self, call_id: str, text: str | list[dict[str, Any]]) -> None:
        """A tool result for a call of the last turn: kept in call order until none waits."""
        for call in self.waiting:
            if call.call_id == call_id:
                call.result = text
                break
        else:
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        self.flush()

    def flush(self) -> None:
        if any(w.result is None for w in self.waiting):
            return
        for call in self.waiting:
            self.messages.append({"role": "tool", "tool_call_id": call.call_id, "content": call.result})
        self.waiting = []

    def settle_unanswered(self) -> None:
        """The conversation moves on without an answer: those calls count as not approved."""
        for call in self.waiting:
            if call.result is None:
                call.result = NOT_ANSWERED
                if call.approval is not None:
                    self.answered.add(call.approval.approval_id)
                if call.elicitation is not None:
                    call.result = NOT_ELICITED
                    self.answered.add(call.elicitation.elicitation_id)
                elif call.call_id in self._unfinished:
                    call.result = NOT_FINISHED
        self.flush()

    def answer(self, answer: ApprovalAnswer, param: str) -> PendingApproval:
        """Check one answer against what waits; 400 when it matches nothing waiting."""
        pending = self.pending().get(answer.approval_id)
        if pending is not None and not any(a.approval_id == answer.approval_id for a in self.answers):
            return pending
        if answer.approval_id in self.answered or pending is not None:
            raise InvalidRequest(
                f"approval request {answer.approval_id!r} was already answered",
                param=param,
                code="approval_already_answered",
            )
        raise InvalidRequest(
            f"approval request {answer.approval_id!r} is not waiting in this conversation",
            param=param,
            code="unknown_approval_request",
        )

    # -- input items ----------------------------------------------------------------------

    def add_item(self, item: Any, param: str) -> None:
        """One ``input`` item: a message, or an earlier output item sent back."""
        if not isinstance(item, dict):
            raise InvalidRequest("each input item must be an object", param=param)
        kind = item.get("type", "message")
        if kind == "mcp_approval_response":
            self._add_answer(item, param)
            return
        if kind == "mcp_elicitation_response":
            self._add_reply(item, param)
            return
        if kind == "mcp_elicitation_request":
            self._add_mcp_elicitation_request(item, param)
            return
        if kind in ("mcp_list_tools", "reasoning", "mcp_approval_request"):
            getattr(self, f"_add_{kind}")(item, param)
            return
        if kind == "mcp_call":
            self._add_mcp_call(item, param)
            return
        self._settle_answers()
        if kind == "compaction":
            summary = decode(str(item.get("encrypted_content") or ""))
            if summary is None:
                raise InvalidRequest("a compaction item's encrypted_content is not one of ours", param=param)
            self.messages.append(summary_message(summary))
            return
        if kind == "message":
            self.settle_unanswered()
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequest(f"unsupported role {role!r}", param=f"{param}.role")
            if role == "assistant":
                self._assistant({"content": flatten_text(item.get("content"), param)})
            else:
                content = message_content(item.get("content"), param)  # images and files as media
                self.messages.append({"role": "system" if role == "developer" else role, "content": content})
        elif kind == "function_call":
            self._tool_call(item.get("call_id") or new_id("call"), item)
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = flatten_text(output, param)
            self.give_result(str(item.get("call_id")), output)
        else:
            raise Unsupported(f"input item type {kind!r} is not supported", param=f"{param}.type")

    def close_input(self) -> None:
        self._reasoning = None
        self._settle_unfinished()

    def _settle_unfinished(self) -> None:
        """Replayed calls that did not finish and wait for nothing (no question of their
        server's follows them)."""
        for call in self.waiting:
            if call.result is None and call.elicitation is None and call.call_id in self._unfinished:
                call.result = NOT_FINISHED
        self._unfinished.clear()
        self.flush()

    def _add_reply(self, item: dict[str, Any], param: str) -> None:
        reply = reply_of(item, param)
        pending = self.asking().get(reply.elicitation_id)
        if pending is None or any(r.elicitation_id == reply.elicitation_id for r in self.replies):
            answered = pending is not None or reply.elicitation_id in self.answered
            raise InvalidRequest(
                f"elicitation request {reply.elicitation_id!r} "
                + ("was already answered" if answered else "is not waiting in this conversation"),
                param=f"{param}.elicitation_request_id",
                code="elicitation_already_answered" if answered else "unknown_elicitation_request",
            )
        check_reply(reply, pending, param)
        self.replies.append(reply)

    def _add_mcp_elicitation_request(self, item: dict[str, Any], param: str) -> None:
        elicitation_id = item.get("id")
        if not isinstance(elicitation_id, str):
            raise InvalidRequest("mcp_elicitation_request needs its 'id'", param=f"{param}.id")
        if elicitation_id in self.asking() or elicitation_id in self.answered:
            return  # already in the stored conversation: the client sent it back as well
        self._settle_answers()
        schema = item.get("requested_schema")
        item_id = str(item.get("call_id") or new_id("mcp"))
        call_id = self._started.get(item_id, item_id)
        pending = PendingElicitation(
            elicitation_id=elicitation_id,
            call_id=call_id,
            server_label=str(item.get("server_label", "")),
            name=str(item.get("name", "")),
            arguments=str(item.get("arguments") or "{}"),
            mode="url" if item.get("mode") == "url" else "form",
            requested_schema=schema if isinstance(schema, dict) else None,
            item_id=item_id,
            input_key=_text_or_none(item.get("input_key")),
            request_state=_text_or_none(item.get("request_state")),
        )
        for call in self.waiting:
            if call.call_id == call_id and call.result is None:
                call.elicitation = pending
                return
        self._tool_call(call_id, item)  # its paused mcp_call item was not sent back
        self.waiting.append(WaitingCall(call_id, elicitation=pending))

    def _add_answer(self, item: dict[str, Any], param: str) -> None:
        approval_id = item.get("approval_request_id")
        if not isinstance(approval_id, str) or not isinstance(item.get("approve"), bool):
            raise InvalidRequest(
                "mcp_approval_response needs 'approval_request_id' and a boolean 'approve'", param=param
            )
        answer = ApprovalAnswer(approval_id, item["approve"], item.get("reason"))
        self.answer(answer, f"{param}.approval_request_id")
        self.answers.append(answer)

    def _settle_answers(self) -> None:
        """Answers followed by more conversation were dealt with back then (replayed history)."""
        for answer in self.answers:
            pending = self.pending()[answer.approval_id]
            result = NOT_ANSWERED if answer.approve else denial_text(answer.reason)
            self.answered.add(answer.approval_id)
            self.give_result(pending.call_id, result)
        self.answers = []
        for reply in self.replies:
            asked = self.asking()[reply.elicitation_id]
            self.answered.add(reply.elicitation_id)
            self.give_result(asked.call_id, NOT_FINISHED)
        self.replies = []

    def _add_mcp_list_tools(self, item: dict[str, Any], param: str) -> None:
        label = item.get("server_label")
        if not isinstance(label, str) or item.get("error"):
            return  # a failed listing showed the model nothing
        try:
            listed = [McpListToolsTool.model_validate(t) for t in item.get("tools") or []]
        except ValueError:
            raise InvalidRequest("mcp_list_tools item has malformed tools", param=f"{param}.tools") from None
        self.listed[label] = ListedServer(label, tuple(tool_from_listing(t) for t in listed), None)

    def _add_reasoning(self, item: dict[str, Any], param: str) -> None:
        parts = [p.get("text", "") for p in item.get("content") or [] if isinstance(p, dict)]
        if not parts:
            parts = [p.get("text", "") for p in item.get("summary") or [] if isinstance(p, dict)]
        self._reasoning = (self._reasoning or "") + "".join(parts)

    def _add_mcp_approval_request(self, item: dict[str, Any], param: str) -> None:
        self._settle_answers()
        approval_id = item.get("id")
        if not isinstance(approval_id, str):
            raise InvalidRequest("mcp_approval_request needs its 'id'", param=f"{param}.id")
        if approval_id in self.pending() or approval_id in self.answered:
            return  # already in the stored conversation: the client sent it back as well
        call_id = new_id("call")
        approval = PendingApproval(
            approval_id=approval_id,
            call_id=call_id,
            server_label=str(item.get("server_label", "")),
            name=str(item.get("name", "")),
            arguments=str(item.get("arguments") or "{}"),
        )
        self._tool_call(call_id, item)
        self.waiting.append(WaitingCall(call_id, approval=approval))

    def _add_mcp_call(self, item: dict[str, Any], param: str) -> None:
        approval_id = item.get("approval_request_id")
        output = item.get("output") or _error_text(item.get("error"))
        answered = next((a for a in self.answers if a.approval_id == approval_id), None)
        if answered is not None:  # the approved call, as it ran back then
            call_id = self.pending()[answered.approval_id].call_id
            self.answers.remove(answered)
            self.answered.add(answered.approval_id)
            if _unfinished(item):  # it paused on its server's question, whose item follows
                self._started[str(item.get("id"))] = call_id
                self._unfinished.add(call_id)
                self.ask_again(call_id, None)
            else:
                self.give_result(call_id, output)
            return
        elicitation_id = item.get("elicitation_request_id")
        replied = next((r for r in self.replies if r.elicitation_id == elicitation_id), None)
        if replied is not None:  # the call that got the user's answer, as it went on back then
            call_id = self.asking()[replied.elicitation_id].call_id
            self.replies.remove(replied)
            self.answered.add(replied.elicitation_id)
            if _unfinished(item):  # it asked again: that question's item follows
                self._unfinished.add(call_id)
                self.ask_again(call_id, None)
            else:
                self.give_result(call_id, output)
            return
        self._settle_answers()
        call_id = item.get("id") or new_id("call")
        self._tool_call(call_id, item)
        if _unfinished(item):
            # paused or skipped: its server's question may follow (_add_mcp_elicitation_request)
            self._unfinished.add(call_id)
            self.waiting.append(WaitingCall(call_id))
        elif self.waiting:
            self.waiting.append(WaitingCall(call_id, output))  # after the one waiting, in order
            self.flush()
        else:
            self.give_result(call_id, output)

    def _tool_call(self, call_id: str, item: dict[str, Any]) -> None:
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"},
        }
        last = self.messages[-1] if self.messages else None
        if last is not None and last["role"] == "assistant" and self._reasoning is None:
            last.setdefault("tool_calls", []).append(call)
        else:
            self._assistant({"content": "", "tool_calls": [call]})

    def _assistant(self, fields: dict[str, Any]) -> None:
        message = {"role": "assistant", **fields}
        if self._reasoning is not None:
            message["reasoning"] = self._reasoning
            self._reasoning = None
        self.messages.append(message)

    # -- storage --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "listed": [
                {
                    "label": s.label,
                    "allowed_key": s.allowed_key,
                    "tools": [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in s.tools],
                }
                for s in self.listed.values()
            ],
            "waiting": [
                {
                    "call_id": w.call_id,
                    "result": w.result,
                    "approval": None if w.approval is None else w.approval.__dict__,
                    "elicitation": None if w.elicitation is None else w.elicitation.__dict__,
                }
                for w in self.waiting
            ],
            "answered": sorted(self.answered),
            "session": self.session,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParsableContext:
        return cls(
            messages=list(data.get("messages", [])),
            listed={
                s["label"]: ListedServer(
                    s["label"], tuple(types.Tool.model_validate(t) for t in s["tools"]), s["allowed_key"]
                )
                for s in data.get("listed", [])
            },
            waiting=[
                WaitingCall(
                    w["call_id"],
                    w["result"],
                    None if w["approval"] is None else PendingApproval(**w["approval"]),
                    PendingElicitation(**w["elicitation"]) if w.get("elicitation") else None,
                )
                for w in data.get("waiting", [])
            ],
            answered=set(data.get("answered", [])),
            session=data.get("session"),
        )


def allowed_key(allowed: Any) -> str:
    """``allowed_tools`` as a comparable string (a changed value lists the tools again)."""
    if hasattr(allowed, "model_dump"):
        allowed = allowed.model_dump(mode="json", exclude_none=True)
    return json.dumps(allowed, sort_keys=True)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _unfinished(item: dict[str, Any]) -> bool:
    """An mcp_call item that paused (or was skipped): no result."""
    return item.get("status") == "incomplete" and not item.get("output") and not item.get("error")


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"Error: {error.get('message') or error.get('content') or error}"
    return "Error: the call failed"
