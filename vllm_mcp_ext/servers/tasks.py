"""A tools/call run as an MCP task (the 2025-11-25 "tasks" utility, experimental).

A server that declares ``capabilities.tasks.requests.tools.call`` may run a tool whose
``execution.taskSupport`` is ``optional`` or ``required`` as a task: the call is sent with
``params.task``, the server answers at once with a `CreateTaskResult`, and the client polls
``tasks/get`` (honouring the server's ``pollInterval``, backing off while nothing changes, never
waiting longer than `TaskPolling.cap` between polls), fetches the result with ``tasks/result``
and cancels with ``tasks/cancel``. A task in ``input_required`` has an elicitation or sampling
request pending that ``tasks/result`` delivers: the session's own callbacks answer it as they
answer a plain call's.

The task id outlives the connection: a transport error while polling re-opens the session through
its owner (``reopen``, `ServerConnection.session` for a configured server) and polls the same id
again, at most `TaskPolling.reconnects` times. A cancelled caller (the response cancelled, its
client gone, the call timeout) sends ``tasks/cancel``: the spec forbids ``notifications/cancelled``
for a task.

`mode` decides per call; `TaskCall` drives one. The SDK (mcp 2.3.0) has the task types but sends
no task-augmented tools/call: `send_task_call` is the one place that reaches into its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from mcp import ClientSession, types
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import TypeAdapter

from vllm_mcp_ext.types.client_handlers import ClientHandlers, Progress
from vllm_mcp_ext.types.source import CallFailed, Code, ServerUnavailable

logger = logging.getLogger(__name__)

Mode = Literal["plain", "task"]
T = TypeVar("T")

POLL_INTERVAL_CAP = 5.0  # seconds: default of `Limits.max_task_poll_interval`
POLL_FLOOR = 0.05  # seconds: a server's pollInterval below this is raised to it
POLL_FIRST = 0.5  # seconds: the first wait when the server names no pollInterval
POLL_GROWTH = 1.5  # each poll that finds the task unchanged waits this much longer
TASK_RECONNECTS = 3  # re-opened sessions one task may use after transport errors
CANCEL_GRACE = 2.0  # seconds tasks/cancel may take once the caller is gone
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_CREATED: TypeAdapter[types.CreateTaskResult | types.CallToolResult] = TypeAdapter(
    types.CreateTaskResult | types.CallToolResult
)


@dataclass(frozen=True)
class TaskPolling:
    cap: float = POLL_INTERVAL_CAP  # longest wait between two tasks/get
    reconnects: int = TASK_RECONNECTS


DEFAULT_POLLING = TaskPolling()


class Session(Protocol):
    """What a task call needs of a session (`servers.session.McpSession`)."""

    name: str
    polling: TaskPolling

    def redact(self, text: str) -> str: ...

    async def request(self, send: Callable[[ClientSession], Awaitable[T]]) -> T: ...

    def lending(self, handlers: ClientHandlers) -> contextlib.AbstractContextManager[None]: ...

    def following(self, token: str, progress: Progress | None) -> contextlib.AbstractContextManager[None]: ...


Reopen = Callable[[], Awaitable[Session]]


def mode(
    session: ClientSession | None,
    capabilities: types.ServerCapabilities,
    tool: types.Tool | None,
    *,
    enabled: bool,
    label: str,
) -> Mode:
    """``task`` when the tool may run as a task and we can drive it; raises `CallFailed` for a
    tool that runs only as a task on a server we cannot drive (never a hang)."""
    support = tool.execution.task_support if tool is not None and tool.execution is not None else None
    if support in (None, "forbidden"):
        return "plain"
    why = _undrivable(session, capabilities, enabled)
    if why is None:
        return "task"
    if support == "optional":
        return "plain"
    raise CallFailed(
        Code.INVALID_REQUEST,
        f"tool {tool.name!r} of MCP server {label!r} runs only as a task, and {why}",  # type: ignore[union-attr]
    )


def _undrivable(
    session: ClientSession | None, capabilities: types.ServerCapabilities, enabled: bool
) -> str | None:
    if not enabled:
        return "tasks are turned off for this server ('tasks': false)"
    requests = capabilities.tasks.requests if capabilities.tasks is not None else None
    if requests is None or requests.tools is None or requests.tools.call is None:
        return "the server does not declare task support for tools/call"
    if session is not None and session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return f"tasks on protocol {session.protocol_version} are not supported yet"
    return None


async def send_task_call(
    session: ClientSession, name: str, arguments: dict[str, Any], ttl_ms: int, progress_token: str
) -> types.CreateTaskResult | types.CallToolResult:
    """tools/call with ``params.task``. The SDK's ``send_request`` checks a tools/call result
    against `CallToolResult`, which a `CreateTaskResult` is not, so this sends it raw, stamped as
    the SDK stamps its own requests (the SDK's subscriptions module does the same)."""
    params = types.CallToolRequestParams(name=name, arguments=arguments, task=types.TaskMetadata(ttl=ttl_ms))
    data: dict[str, Any] = {
        "method": "tools/call",
        "params": {
            **params.model_dump(by_alias=True, mode="json", exclude_none=True),
            "_meta": {"progressToken": progress_token},
        },
    }
    opts: Any = {}
    session._stamp(data, opts)
    raw = await session._dispatcher.send_raw_request("tools/call", data["params"], opts)
    return _CREATED.validate_python(raw, by_name=False)


class Backoff:
    """Waits between polls: the server's ``pollInterval`` first, longer while nothing changes,
    never past ``cap``; a change of status starts again from the server's interval."""

    def __init__(self, poll_interval_ms: int | None, cap: float):
        self.cap = cap
        self.base = self._base(poll_interval_ms)
        self.delay = self.base

    def _base(self, poll_interval_ms: int | None) -> float:
        seconds = POLL_FIRST if poll_interval_ms is None else poll_interval_ms / 1000
        return min(max(seconds, POLL_FLOOR), self.cap)

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * POLL_GROWTH, self.cap)
        return delay

    def saw(self, task: types.Task | types.GetTaskResult, changed: bool) -> None:
        if task.poll_interval is not None:
            self.base = self._base(task.poll_interval)
        if changed:
            self.delay = self.base
        else:
            self.delay = max(self.delay, self.base)


class TaskCall:
    """One tools/call run as a task, from creation to its result, on ``session`` and, after a
    transport error, on the sessions ``reopen`` gives."""

    def __init__(
        self,
        session: Session,
        reopen: Reopen | None,
        name: str,
        arguments: dict[str, Any],
        progress: Progress | None,
        handlers: ClientHandlers,
    ):
        self.session = session
        self.reopen = reopen
        self.name = name
        self.arguments = arguments
        self.progress = progress
        self.handlers = handlers
        self.polling = session.polling
        self.token = f"vllm-mcp-task-{uuid.uuid4().hex}"
        self.task_id: str | None = None
        self.polls = 0  # tasks/get sent (tests and logs)
        self._held = contextlib.ExitStack()

    def _hold(self, session: Session) -> None:
        """Lend ``session`` the call's handlers and progress until the call ends: a task's
        progress and requests come between and during its polls."""
        self._held.enter_context(session.lending(self.handlers))
        self._held.enter_context(session.following(self.token, self.progress))

    async def run(self, limit: float) -> types.CallToolResult:
        """The task's result within ``limit`` seconds; raises `CallFailed`. Cancelled, or past
        the limit, it cancels the task on the server."""
        try:
            with contextlib.ExitStack() as self._held:
                self._hold(self.session)
                async with asyncio.timeout(limit):
                    return await self._run(limit)
        except TimeoutError:
            await self._cancel()
            raise CallFailed(Code.REQUEST_TIMEOUT, f"tool call timed out after {limit:g}s") from None
        except asyncio.CancelledError:
            await self._cancel()
            raise

    async def _run(self, limit: float) -> types.CallToolResult:
        created = await self._on(
            lambda s: s.request(
                lambda c: send_task_call(c, self.name, self.arguments, int(limit * 1000), self.token)
            ),
            retry=False,  # a second tools/call would run the tool twice
        )
        if isinstance(created, types.CallToolResult):  # the server ran it plainly
            return created
        task = created.task
        self.task_id = task.task_id
        logger.info("MCP server %s runs %s as task %s", self.session.name, self.name, task.task_id)
        return await self._follow(task)

    async def _follow(self, task: types.Task | types.GetTaskResult) -> types.CallToolResult:
        backoff = Backoff(task.poll_interval, self.polling.cap)
        status = task.status
        while status not in TERMINAL and status != "input_required":
            await asyncio.sleep(backoff.next())
            task = await self._on(self._get)
            backoff.saw(task, task.status != status)
            status = task.status
        if status == "cancelled":
            message = task.status_message or "the task was cancelled"
            raise CallFailed(
                Code.INTERNAL_ERROR, self.session.redact(f"the MCP server cancelled the task: {message}")
            )
        # completed or failed: the result (a failed tool's result says why); input_required:
        # tasks/result delivers the server's requests to our callbacks, then the result
        return await self._on(self._result)

    async def _get(self, session: Session) -> types.GetTaskResult:
        self.polls += 1
        request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=self._id))
        return await session.request(lambda c: c.send_request(request, types.GetTaskResult))

    async def _result(self, session: Session) -> types.CallToolResult:
        request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=self._id))
        return await session.request(lambda c: c.send_request(request, types.CallToolResult))

    @property
    def _id(self) -> str:
        assert self.task_id is not None
        return self.task_id

    async def _on(self, op: Callable[[Session], Awaitable[T]], *, retry: bool = True) -> T:
        """``op`` on the current session; after a transport error, on a re-opened one (bounded)."""
        attempt = 0
        while True:
            session = self.session
            try:
                return await op(session)
            except CallFailed as exc:
                if not retry or self.reopen is None or exc.rpc_code != Code.CONNECTION_CLOSED:
                    raise
                if attempt >= self.polling.reconnects:
                    raise CallFailed(
                        exc.rpc_code, f"{exc.message} (task {self.task_id}, after {attempt} reconnects)"
                    ) from None
            attempt += 1
            logger.info("MCP server %s: reconnecting to poll task %s", session.name, self.task_id)
            await asyncio.sleep(POLL_FIRST)
            with contextlib.suppress(ServerUnavailable):
                self.session = await self.reopen()
                self._hold(self.session)

    async def _cancel(self) -> None:
        """tasks/cancel for a task the caller no longer waits for, within `CANCEL_GRACE`."""
        if self.task_id is None:
            return
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=self.task_id))
        session = self.session
        sent = asyncio.ensure_future(
            session.request(lambda c: c.send_request(request, types.CancelTaskResult))
        )
        done, _ = await asyncio.wait({sent}, timeout=CANCEL_GRACE)
        if not done:
            sent.cancel()
        elif not sent.cancelled() and sent.exception() is not None:
            logger.info("MCP server %s: tasks/cancel failed: %s", session.name, sent.exception())
        else:
            logger.info("MCP server %s: cancelled task %s", session.name, self.task_id)
