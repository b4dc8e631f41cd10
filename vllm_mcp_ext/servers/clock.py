"""A tool call's time bounds, stopped while its server's question waits for the user.

Elicitation ``ask`` pauses a call until the user answers, which has its own bound
(`Limits.elicitation_wait`); the call's own bounds must not run meanwhile, or every question a
slow user answers would time the call out. One clock serves every kind of call: a plain
tools/call runs under an anyio cancel scope (`McpSession._call`); a call run as an MCP task
under an `asyncio.Timeout` (`servers.tasks.TaskCall.run`), and a 2025-11-25 task's question
comes while its ``tasks/result`` request waits under that request's own bound. All of them
count in the event loop's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator

import anyio
from mcp import types

from vllm_mcp_ext.types.client_handlers import Elicit, ElicitationAnswer

Timer = anyio.CancelScope | asyncio.Timeout


class CallClock:
    """The bounds of one call. `running` registers a bound for the block; `stopped_while` wraps
    the call's ``elicit`` so that every running bound stands still while the user is asked (any
    of the call's questions) and goes on after with the time it had left."""

    def __init__(self) -> None:
        self._timers: list[Timer] = []
        self._stopped: list[tuple[Timer, float]] = []  # while asking: each bound and its time left
        self._asking = 0  # questions of the call waiting for the user

    @contextlib.contextmanager
    def running(self, timer: Timer) -> Iterator[None]:
        self._timers.append(timer)
        try:
            yield
        finally:
            self._timers.remove(timer)

    def stopped_while(self, elicit: Elicit) -> Elicit:
        async def asked(params: types.ElicitRequestParams) -> ElicitationAnswer:
            if not self._asking:
                self._stop()
            self._asking += 1
            try:
                return await elicit(params)
            finally:
                self._asking -= 1
                if not self._asking:
                    self._restart()

        return asked

    def _stop(self) -> None:
        now = anyio.current_time()
        self._stopped = [(timer, _deadline(timer) - now) for timer in self._timers]
        for timer, _ in self._stopped:
            _set_deadline(timer, math.inf)

    def _restart(self) -> None:
        now = anyio.current_time()
        for timer, left in self._stopped:
            _set_deadline(timer, now + left)
        self._stopped = []


def _deadline(timer: Timer) -> float:
    if isinstance(timer, asyncio.Timeout):
        when = timer.when()
        return math.inf if when is None else when
    return timer.deadline


def _set_deadline(timer: Timer, deadline: float) -> None:
    if isinstance(timer, asyncio.Timeout):
        # an expired or exited one raises: the call is ending already, so leave it be
        with contextlib.suppress(RuntimeError):
            timer.reschedule(None if math.isinf(deadline) else deadline)
    else:
        timer.deadline = deadline
