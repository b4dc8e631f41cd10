"""Elicitation ``ask``: a server's question to the user pauses the response, as an approval does.

A configured server with ``elicitation: "ask"`` sends ``elicitation/create`` (or, on 2026-07-28,
an ``input_required`` round) while one of a response's calls runs; for a request that opted in
(``include: ["mcp_elicitation"]``) the call's `CallGate` takes the question and the call waits
in it. The loop then ends the response with an ``mcp_elicitation_request`` item
(`events.elicitation`) and hands the waiting call to `HeldCalls`: it stays in this process, its
session open, for `Limits.elicitation_wait` seconds. The client continues (``previous_response_id``
or by replaying the items) with an ``mcp_elicitation_response``; that response gives the call the
answer and reports its result as a new ``mcp_call`` item. A continuation that finds no held call
(another process, or after the wait) reports the call failed, saying why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

import jsonschema
import referencing.exceptions
from mcp import types

from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.events.elicitation import McpElicitationRequest
from vllm_mcp_ext.loop.calls import _NO_RETRIEVAL
from vllm_mcp_ext.types.client_handlers import ASKING_ROUND, ElicitationAnswer, InputRound
from vllm_mcp_ext.types.source import CallOutcome

logger = logging.getLogger(__name__)

Action = Literal["accept", "decline", "cancel"]
EXPIRED = (
    "the tool call waited for the user's answer to its server's question and is no longer held: "
    "it expired (elicitationWaitSeconds) or was held by another server process; it was cancelled"
)
NOT_ANSWERED = "The tool call waited for the user's answer, which did not come; it did not finish."


@dataclass(frozen=True)
class PendingElicitation:
    """A call of the model's that waits for the user's answer to its server's question."""

    elicitation_id: str  # the mcp_elicitation_request item's id
    call_id: str  # the tool call's id in the model's conversation (the paused mcp_call item's)
    server_label: str
    name: str
    arguments: str
    mode: str  # "form" or "url"
    requested_schema: dict[str, Any] | None = None  # form mode: what an accepted answer must be
    # the mcp_call item that started the call: the model's call id, but for an approved call,
    # whose call id the client never sees
    item_id: str = ""
    # a 2026-07-28 round that asked only this: the call can resume from the answer anywhere
    input_key: str | None = None
    request_state: str | None = None


@dataclass(frozen=True)
class ElicitationReply:
    """The client's ``mcp_elicitation_response``."""

    elicitation_id: str
    action: Action
    content: dict[str, Any] | None = None

    def result(self) -> types.ElicitResult:
        return types.ElicitResult(action=self.action, content=self.content)


def reply_of(item: dict[str, Any], param: str) -> ElicitationReply:
    """An ``mcp_elicitation_response`` item's fields checked; 400 for a malformed one."""
    request_id = item.get("elicitation_request_id")
    action = item.get("action")
    if not isinstance(request_id, str) or action not in get_args(Action):
        raise InvalidRequest(
            "mcp_elicitation_response needs 'elicitation_request_id' and an 'action' of "
            f"{list(get_args(Action))}",
            param=param,
        )
    content = item.get("content")
    if content is not None and not isinstance(content, dict):
        raise InvalidRequest("'content' must be an object", param=f"{param}.content")
    if content is not None and action != "accept":
        raise InvalidRequest(
            f"'content' goes only with action 'accept', not {action!r}", param=f"{param}.content"
        )
    return ElicitationReply(request_id, cast(Action, action), content)


def check_reply(reply: ElicitationReply, pending: PendingElicitation, param: str) -> None:
    """An accepted form answer must match the server's ``requested_schema``; a URL-mode answer
    carries no content. 400 otherwise."""
    if reply.action != "accept":
        return
    if pending.mode == "url":
        if reply.content is not None:
            raise InvalidRequest("a URL-mode answer carries no 'content'", param=f"{param}.content")
        return
    schema = pending.requested_schema or {"type": "object"}
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
        error = jsonschema.exceptions.best_match(
            validator(schema, registry=_NO_RETRIEVAL).iter_errors(reply.content or {})
        )
    except (jsonschema.SchemaError, referencing.exceptions.Unresolvable):
        return  # the server's broken schema (or one that points outside itself): it judges
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.absolute_path)
        raise InvalidRequest(
            f"the answer does not match the server's requested_schema: {error.message}",
            param=f"{param}.content{where}",
            code="invalid_elicitation_content",
        )


def request_item(pending: PendingElicitation, question: types.ElicitRequestParams) -> McpElicitationRequest:
    """The ``mcp_elicitation_request`` item a paused response ends with."""
    url = question if isinstance(question, types.ElicitRequestURLParams) else None
    return McpElicitationRequest(
        type="mcp_elicitation_request",
        id=pending.elicitation_id,
        server_label=pending.server_label,
        call_id=pending.item_id or pending.call_id,
        name=pending.name,
        arguments=pending.arguments,
        mode="url" if url is not None else "form",
        message=question.message,
        requested_schema=pending.requested_schema,
        url=url.url if url is not None else None,
        elicitation_id=url.elicitation_id if url is not None else None,
        input_key=pending.input_key,
        request_state=pending.request_state,
    )


class CallGate:
    """One call's questions to the user: the call waits in `elicit` until `answer` (one
    question at a time; a second waits for the first's answer)."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.question: types.ElicitRequestParams | None = None
        self.round: InputRound | None = None  # the question's 2026-07-28 round, when resumable
        self._answer: asyncio.Future[ElicitationAnswer] | None = None
        self._lock = asyncio.Lock()

    async def elicit(self, params: types.ElicitRequestParams) -> ElicitationAnswer:
        """`types.client_handlers.Elicit`."""
        async with self._lock:
            self._answer = asyncio.get_running_loop().create_future()
            self.question = params
            self.round = ASKING_ROUND.get()
            self.asked.set()
            try:
                return await self._answer
            finally:
                self.asked.clear()
                self.question = None
                self._answer = None

    def answer(self, result: ElicitationAnswer) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(result)


async def settle(
    task: asyncio.Task[CallOutcome], gate: CallGate | None, seconds: float
) -> CallOutcome | None:
    """The call's outcome; None when it waits for the user (its gate asked) first; raises
    `TimeoutError` past ``seconds`` (the call is then the caller's to cancel)."""
    if task.done():
        return task.result()
    waits: set[asyncio.Future[Any]] = {task}
    asked = asyncio.ensure_future(gate.asked.wait()) if gate is not None else None
    if asked is not None:
        waits.add(asked)
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if asked is not None:
            asked.cancel()
    if task.done():
        return task.result()
    if gate is not None and gate.asked.is_set():
        return None
    raise TimeoutError


@dataclass
class HeldCall:
    pending: PendingElicitation
    task: asyncio.Task[CallOutcome]
    gate: CallGate
    owner: str | None  # the caller's key hash: only it may answer
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class HeldCalls:
    """The calls waiting for an answer in this process, each for at most ``wait`` seconds, at
    most ``limit`` at once (`Limits.elicitation_wait`, `Limits.max_held_elicitations`)."""

    def __init__(self, wait: float = 600.0, limit: int = 64):
        self.wait = wait
        self.limit = limit
        self._held: dict[str, HeldCall] = {}

    def hold(self, held: HeldCall) -> bool:
        """False when full: the caller declines the question instead."""
        if len(self._held) >= self.limit:
            logger.warning(
                "%d tool calls already wait for answers; a server's question is declined", self.limit
            )
            return False
        held.timer = asyncio.get_running_loop().call_later(
            self.wait, self._expire, held.pending.elicitation_id
        )
        self._held[held.pending.elicitation_id] = held
        return True

    def take(self, elicitation_id: str, owner: str | None) -> HeldCall | None:
        held = self._held.get(elicitation_id)
        if held is None or held.owner != owner:
            return None
        del self._held[elicitation_id]
        if held.timer is not None:
            held.timer.cancel()
        return held

    def drop(self, elicitation_ids: Iterable[str], owner: str | None) -> None:
        """Cancel the held calls of questions that will not be answered (the conversation
        moved on without an answer)."""
        for elicitation_id in elicitation_ids:
            held = self.take(elicitation_id, owner)
            if held is not None:
                held.task.cancel()

    def _expire(self, elicitation_id: str) -> None:
        held = self._held.pop(elicitation_id, None)
        if held is not None:
            logger.info(
                "tool call %s of %s: the user's answer did not come in %gs; cancelled",
                held.pending.name,
                held.pending.server_label,
                self.wait,
            )
            held.task.cancel()

    def __len__(self) -> int:
        return len(self._held)

    def close(self) -> None:
        for elicitation_id in list(self._held):
            self._expire(elicitation_id)
