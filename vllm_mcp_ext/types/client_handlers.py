"""`ClientHandlers`: what one tools/call answers for its server while it runs.

Whoever makes a call (the loop, the ``/mcp`` gateway) lends them to the session for that call:
the call's progress, and answers to the server's ``sampling/createMessage`` and
``elicitation/create``. How a session routes a server's request to them, and what it does with
none, is `servers.client_handlers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from mcp import types
from mcp.shared.dispatcher import ProgressFnT

Progress = ProgressFnT  # (progress, total, message) -> awaitable
SamplingAnswer = types.CreateMessageResult | types.ErrorData
ElicitationAnswer = types.ElicitResult | types.ErrorData
# (the asking server's label, the request with maxTokens already within the server's per-request
# cap, the server's cap on all sampling of one response)
Sample = Callable[[str, types.CreateMessageRequestParams, int], Awaitable[SamplingAnswer]]
Elicit = Callable[[types.ElicitRequestParams], Awaitable[ElicitationAnswer]]


@dataclass(frozen=True)
class InputRound:
    """A 2026-07-28 ``input_required`` round that asked one thing: sending ``tools/call`` again
    with the answer under ``key`` and the round's ``request_state`` resumes the call, in any
    process (stateless multi-round-trip)."""

    key: str
    request_state: str | None


# the round an elicitation being answered belongs to (None: a 2025 request, or a round that asked
# several things), set by the session around the call's `Elicit`
ASKING_ROUND: ContextVar[InputRound | None] = ContextVar("asking_round", default=None)


@dataclass(frozen=True)
class Resume:
    """A call that starts from an earlier round's answer instead of from scratch."""

    round: InputRound
    answer: types.ElicitResult


@dataclass(frozen=True)
class ClientHandlers:
    """Each part optional. ``sample`` and ``elicit`` are routed by identity: give every call of
    one response (or one ``/mcp`` client request) the same callables, so calls of one owner
    running together still reach it."""

    progress: Progress | None = None
    sample: Sample | None = None
    elicit: Elicit | None = None
    resume: Resume | None = None  # the call's first tools/call carries this round's answer


NO_HANDLERS = ClientHandlers()
