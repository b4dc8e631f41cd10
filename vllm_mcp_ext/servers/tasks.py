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

The 2026-07-28 tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663) is server-directed:
the session declares the extension (`claim`), the server may answer any tools/call with a
`CreatedTask` (``resultType: "task"``), and `ExtensionTaskCall` follows it: ``tasks/get`` carries
the result, the error or the pending ``inputRequests`` inline, the answers go back by
``tasks/update``, ``tasks/cancel`` is an empty ack; each carries ``Mcp-Name: <taskId>`` on HTTP.

`mode` decides per call; `TaskCall` drives one. The SDK (mcp 2.3.0) has the 2025 task types but
sends no task-augmented tools/call: `send_task_call` is the one place that reaches into its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from mcp import ClientSession, types
from mcp.client.extension import ClaimContext, ResultClaim
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field, TypeAdapter

from vllm_mcp_ext.servers.clock import CallClock
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
EXTENSION = "io.modelcontextprotocol/tasks"  # the 2026-07-28 tasks extension (SEP-2663)
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

    async def request(
        self, send: Callable[[ClientSession], Awaitable[T]], clock: CallClock | None = None
    ) -> T: ...

    def lending(self, handlers: ClientHandlers) -> contextlib.AbstractContextManager[None]: ...

    def following(self, token: str, progress: Progress | None) -> contextlib.AbstractContextManager[None]: ...

    async def answer_input(
        self, key: str, request: types.InputRequest, handlers: ClientHandlers
    ) -> types.InputResponse | types.ErrorData: ...


class Polled(Protocol):
    """A task's state as a poll reads it (either generation)."""

    @property
    def status(self) -> str: ...

    @property
    def poll_interval(self) -> int | None: ...


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
    if enabled and session is not None and session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "plain"  # server-directed: a task answer to the plain call is followed (`ExtensionTaskCall`)
    if support in (None, "forbidden"):
        return "plain"
    why = _undrivable(capabilities, enabled)
    if why is None:
        return "task"
    if support == "optional":
        return "plain"
    raise CallFailed(
        Code.INVALID_REQUEST,
        f"tool {tool.name!r} of MCP server {label!r} runs only as a task, and {why}",  # type: ignore[union-attr]
    )


def _undrivable(capabilities: types.ServerCapabilities, enabled: bool) -> str | None:
    if not enabled:
        return "tasks are turned off for this server ('tasks': false)"
    requests = capabilities.tasks.requests if capabilities.tasks is not None else None
    if requests is None or requests.tools is None or requests.tools.call is None:
        return "the server does not declare task support for tools/call"
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


# -- the 2026-07-28 extension (SEP-2663): its wire shapes, which the SDK does not define ----------


class _Task(types.Result):
    task_id: str
    status: types.TaskStatus
    status_message: str | None = None
    poll_interval: int | None = Field(default=None, alias="pollIntervalMs")


class CreatedTask(_Task):
    """A tools/call answered with a task handle (``resultType: "task"``)."""

    result_type: Literal["task"] = "task"


class DetailedTask(_Task):
    """What ``tasks/get`` answers: the task, with its result, error or pending requests inline."""

    result: dict[str, Any] | None = None
    error: types.ErrorData | None = None
    input_requests: types.InputRequests | None = None


class TaskParams(types.RequestParams):
    task_id: str


class UpdateTaskParams(TaskParams):
    input_responses: types.InputResponses


class GetTask(types.Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param: ClassVar[str | None] = "taskId"  # Mcp-Name on HTTP, for routing to the task's holder


class UpdateTask(types.Request[UpdateTaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param: ClassVar[str | None] = "taskId"


class CancelTask(types.Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param: ClassVar[str | None] = "taskId"


async def _resolved_by_session(created: CreatedTask, context: ClaimContext) -> types.CallToolResult:
    raise RuntimeError("a task answer is followed by McpSession.call_tool (ExtensionTaskCall), not the SDK")


def claim() -> dict[str, Any]:
    """The `ClientSession` arguments that declare the extension on 2026-07-28 requests and let
    ``call_tool(allow_claimed=True)`` return a `CreatedTask` (the SDK leaves the extension out
    of a 2025 handshake)."""
    task = ResultClaim(result_type="task", model=CreatedTask, resolve=_resolved_by_session)
    return {"extensions": {EXTENSION: {}}, "result_claims": {EXTENSION: [task]}}


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

    def saw(self, task: Polled, changed: bool) -> None:
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
        # the call's bounds stop while its questions wait for the user, as a plain call's do
        self.clock = CallClock()
        if handlers.elicit is not None:
            handlers = replace(handlers, elicit=self.clock.stopped_while(handlers.elicit))
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
                async with asyncio.timeout(limit) as timer:
                    with self.clock.running(timer):
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

    async def _follow(self, task: Polled) -> types.CallToolResult:
        backoff = Backoff(task.poll_interval, self.polling.cap)
        while (done := await self._settle(task)) is None:
            status = task.status
            await asyncio.sleep(backoff.next())
            task = await self._on(self._get)
            backoff.saw(task, task.status != status)
        return done

    async def _settle(self, task: Polled) -> types.CallToolResult | None:
        """The call's result once ``task`` says it is there, None to poll on."""
        if task.status == "cancelled":
            raise self._cancelled(task)
        if task.status in TERMINAL or task.status == "input_required":
            # completed or failed: the result (a failed tool's result says why); input_required:
            # tasks/result delivers the server's requests to our callbacks, then the result
            return await self._on(self._result)
        return None

    def _cancelled(self, task: Any) -> CallFailed:
        message = task.status_message or "the task was cancelled"
        return CallFailed(
            Code.INTERNAL_ERROR, self.session.redact(f"the MCP server cancelled the task: {message}")
        )

    async def _get(self, session: Session) -> Polled:
        self.polls += 1
        request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=self._id))
        return await session.request(lambda c: c.send_request(request, types.GetTaskResult))

    async def _result(self, session: Session) -> types.CallToolResult:
        request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=self._id))
        # a task in input_required asks its question while tasks/result waits
        return await session.request(lambda c: c.send_request(request, types.CallToolResult), self.clock)

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

    async def _send_cancel(self, client: ClientSession) -> Any:
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=self._id))
        return await client.send_request(request, types.CancelTaskResult)

    async def _cancel(self) -> None:
        """tasks/cancel for a task the caller no longer waits for, within `CANCEL_GRACE`."""
        if self.task_id is None:
            return
        session = self.session
        sent = asyncio.ensure_future(session.request(self._send_cancel))
        done, _ = await asyncio.wait({sent}, timeout=CANCEL_GRACE)
        if not done:
            sent.cancel()
        elif not sent.cancelled() and sent.exception() is not None:
            logger.info("MCP server %s: tasks/cancel failed: %s", session.name, sent.exception())
        else:
            logger.info("MCP server %s: cancelled task %s", session.name, self.task_id)


class ExtensionTaskCall(TaskCall):
    """A tools/call a 2026-07-28 server answered with a task (`CreatedTask`), followed to its
    result: ``tasks/get`` polls, ``inputRequests`` answered once each by ``tasks/update``."""

    created: CreatedTask

    def following(self, created: CreatedTask) -> ExtensionTaskCall:
        """This call, set to follow the task the server answered with."""
        self.created = created
        self.task_id = created.task_id
        self._answered: set[str] = set()  # inputRequests keys answered (the server repeats them)
        return self

    async def _run(self, limit: float) -> types.CallToolResult:
        logger.info("MCP server %s runs %s as task %s", self.session.name, self.name, self.task_id)
        return await self._follow(self.created)

    async def _get(self, session: Session) -> DetailedTask:
        self.polls += 1
        request = GetTask(params=TaskParams(task_id=self._id))
        return await session.request(lambda c: c.send_request(request, DetailedTask))

    async def _settle(self, task: Polled) -> types.CallToolResult | None:
        if not isinstance(task, DetailedTask):  # the created handle: its state comes by polling
            return None
        if task.status == "cancelled":
            raise self._cancelled(task)
        if task.status == "completed":
            try:
                return types.CallToolResult.model_validate(task.result or {}, by_name=False)
            except ValueError:
                raise CallFailed(
                    Code.INTERNAL_ERROR, "the MCP server's task result is not a tool result"
                ) from None
        if task.status == "failed":
            error = task.error or types.ErrorData(code=Code.INTERNAL_ERROR, message=task.status_message or "")
            raise CallFailed(error.code, self.session.redact(error.message or "the task failed"))
        if task.status == "input_required":
            await self._answer(task.input_requests or {})
        return None

    async def _answer(self, requests: types.InputRequests) -> None:
        """Each request not answered yet goes to the session's handlers, as the same request
        sent plainly would; the answers go back in one ``tasks/update``."""
        fresh = {key: request for key, request in requests.items() if key not in self._answered}
        if not fresh:
            return
        answers: types.InputResponses = {}
        for key, request in fresh.items():
            answer = await self.session.answer_input(key, request, self.handlers)
            if isinstance(answer, types.ErrorData):
                await self._cancel()
                raise CallFailed(answer.code, self.session.redact(answer.message))
            answers[key] = answer
        update = UpdateTask(params=UpdateTaskParams(task_id=self._id, input_responses=answers))
        await self._on(lambda s: s.request(lambda c: c.send_request(update, types.EmptyResult)))
        self._answered.update(answers)

    async def _send_cancel(self, client: ClientSession) -> Any:
        request = CancelTask(params=TaskParams(task_id=self._id))
        return await client.send_request(request, types.EmptyResult)
