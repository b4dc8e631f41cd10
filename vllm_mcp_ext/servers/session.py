"""One MCP client session: the one implementation behind configured and remote servers.

The session lives in one owner task from open to close: anyio context managers (the transport's
streams, the SDK's `ClientSession`) are entered and left in the same task. Borrowers read its
tools and call through it. Each tools/call runs in a task of its own that the caller's
cancellation cancels plainly, so the SDK sends ``notifications/cancelled`` to the server: a
cancellation that arrives through an anyio cancel scope (Starlette's disconnect handling) carries
that scope's message, and the SDK's courtesy cancel would then never reach the wire.

Opening tries the given transports in order: a server that answers streamable HTTP's
``initialize`` with 400, 404 or 405 is an older HTTP+SSE server (the MCP backwards-compatibility
rule). A transport error, or a call that finds the connection closed, breaks the session: it
ends, and its owner (`ServerConnection`, the remote pool) decides what comes next.

Foreign errors (``MCPError``, anyio stream errors, httpx2 errors, timeouts) become
`OpenFailed`/`CallFailed` here and nowhere else (`_open_failure`, `_call_failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import ClientSession, types
from mcp.client._input_required import run_input_required_driver
from mcp.client._probe import negotiate_auto
from mcp.client.session import ClientRequestContext
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from vllm_mcp_ext import observe
from vllm_mcp_ext.config.client_features import DEFAULT as DEFAULT_FEATURES
from vllm_mcp_ext.config.client_features import ClientFeatures
from vllm_mcp_ext.observe import metrics, spans
from vllm_mcp_ext.servers import client_handlers, tasks
from vllm_mcp_ext.servers.client_handlers import InFlight
from vllm_mcp_ext.servers.clock import CallClock
from vllm_mcp_ext.servers.hooks import ClientHooks
from vllm_mcp_ext.servers.listing import checked_tools
from vllm_mcp_ext.servers.tasks import DEFAULT_POLLING, ExtensionTaskCall, TaskCall, TaskPolling
from vllm_mcp_ext.servers.transports import Transport
from vllm_mcp_ext.types.client_handlers import (
    ASKING_ROUND,
    NO_HANDLERS,
    ClientHandlers,
    Elicit,
    InputRound,
    Resume,
)
from vllm_mcp_ext.types.source import LOST, CallFailed, Code, OpenFailed

logger = logging.getLogger(__name__)

FALLBACK_STATUSES = (400, 404, 405)
CLOSE_GRACE = 5.0  # seconds a closing session may take (DELETE, stream shutdown)
CANCEL_GRACE = 2.0  # seconds a cancelled call may take to tell the server
_SDK_CLOSED = "Connection closed"  # the SDK's text for CONNECTION_CLOSED, which says nothing more
Progress = ProgressFnT  # the SDK's progress callback: (progress, total, message) -> awaitable
T = TypeVar("T")
# what a server may tell its client besides log messages, passed to `ClientHooks.notification`
_PASSED = (
    types.ToolListChangedNotification,
    types.PromptListChangedNotification,
    types.ResourceListChangedNotification,
    types.ResourceUpdatedNotification,
)


@dataclass(frozen=True)
class Timeouts:
    open: float  # everything before the session is usable: streams, initialize, tools/list
    initialize: float
    list: float
    call: float


class McpSession:
    def __init__(
        self,
        name: str,
        transports: Sequence[Transport],
        timeouts: Timeouts,
        *,
        redact: Callable[[str], str] = str,
        kind: str = "configured",
        on_tools_changed: Callable[[], None] | None = None,
        features: ClientFeatures = DEFAULT_FEATURES,
        hooks: ClientHooks | None = None,
        polling: TaskPolling = DEFAULT_POLLING,
    ):
        self.name = name  # for logs and the owner task's name
        self.kind = kind  # "configured", "proxied" (one /mcp client's own) or "remote": metrics label remote servers by kind only
        self.on_tools_changed = on_tools_changed
        self.hooks = hooks  # a /mcp client's own session: that client answers (servers.hooks)
        self.timeouts = timeouts
        self.features = features  # what the server may ask of us (elicitation, sampling)
        self.redact = redact
        self.tools: tuple[types.Tool, ...] = ()
        self.server_name: str | None = None
        self.capabilities = types.ServerCapabilities()  # what the server said it serves
        self.instructions: str | None = None
        self.transport: str | None = None  # the kind that opened
        self.last_error: str | None = None
        self._transports = tuple(transports)
        self._trace = self._transports[0].trace
        self._retired = False
        self._session: ClientSession | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opened.add_done_callback(_retrieve)  # nobody may be waiting when it fails
        self._stop = asyncio.Event()
        self._broken = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._in_flight = InFlight()  # the handlers of the calls running (servers.client_handlers)
        self.polling = polling  # how task-run calls are polled (servers.tasks)
        self._task_progress: dict[str, Progress] = {}  # a task's progress token -> its call's callback

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, task_name: str) -> None:
        self._task = asyncio.create_task(self._run(), name=task_name)

    async def wait_open(self) -> None:
        """Wait until initialized and listed; raises `OpenFailed`."""
        try:
            await asyncio.wait_for(asyncio.shield(self._opened), self.timeouts.open + 1)
        except TimeoutError:
            raise OpenFailed(f"no answer within {self.timeouts.open:g}s") from None

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._broken.is_set()

    @property
    def retired(self) -> bool:
        """No new borrowers: it broke, it is closing, or its owner retired it."""
        return self._retired or self._broken.is_set()

    def retire(self) -> None:
        self._retired = True

    async def close(self) -> None:
        self._retired = True
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            if not self._opened.done():  # still opening: nothing to shut down politely
                task.cancel()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), CLOSE_GRACE)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._refresh is not None:
            self._refresh.cancel()

    # -- calls ----------------------------------------------------------------------------

    @property
    def metrics_label(self) -> str:
        return observe.server_label(self.name, remote=self.kind == "remote")

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        timeout: float | None = None,
        progress: Progress | None = None,
        handlers: ClientHandlers = NO_HANDLERS,
        reopen: tasks.Reopen | None = None,
    ) -> types.CallToolResult:
        """One tools/call within ``timeout`` (default: the call timeout), failing fast when the
        transport breaks; raises `CallFailed`. A cancelled caller cancels the call on the server.
        ``progress`` (or ``handlers.progress``) gets the server's progress notifications for this
        call; ``handlers`` answer the server's requests while it runs. A tool the server runs as
        a task is run as one (`servers.tasks`), polled across the sessions ``reopen`` gives
        after a transport error. Every call is recorded here, once (`observe.tool_call`), the
        one place all tool calls pass."""
        progress = progress or handlers.progress
        limit = self.timeouts.call if timeout is None else max(timeout, 0.0)
        with observe.tool_call(self.metrics_label, name) as record:
            if self.task_mode(name) == "task":
                call = TaskCall(self, reopen, name, arguments, progress, handlers)
                result = await _own_task(call.run(limit))
            else:
                clock = CallClock()
                asking = handlers
                if handlers.elicit is not None:
                    asking = replace(handlers, elicit=clock.stopped_while(handlers.elicit))
                with self._in_flight.track(asking):
                    answer = await self._call_once(
                        name, arguments, timeout, progress, asking.elicit, clock, asking.resume
                    )
                if isinstance(answer, tasks.CreatedTask):  # 2026-07-28: the server made it a task
                    followed = ExtensionTaskCall(self, reopen, name, arguments, progress, handlers)
                    answer = await _own_task(followed.following(answer).run(limit))
                result = answer
            record.result(result.is_error)
            return result

    def task_mode(self, name: str) -> tasks.Mode:
        """Whether a call of tool ``name`` runs as a task; raises `CallFailed` when the tool
        runs only as one and we cannot drive it."""
        tool = next((t for t in self.tools if t.name == name), None)
        return tasks.mode(
            self._session, self.capabilities, tool, enabled=self.features.tasks, label=self.name
        )

    def lending(self, handlers: ClientHandlers) -> contextlib.AbstractContextManager[None]:
        """Route the server's requests to ``handlers`` in the block (`InFlight`)."""
        return self._in_flight.track(handlers)

    @contextlib.contextmanager
    def following(self, token: str, progress: Progress | None) -> Iterator[None]:
        """Progress notifications with ``token`` go to ``progress`` in the block: a task's
        progress arrives after the tools/call that created it was answered, so past the SDK's
        own per-request matching."""
        if progress is None:
            yield
            return
        self._task_progress[token] = progress
        try:
            yield
        finally:
            self._task_progress.pop(token, None)

    async def _call_once(
        self,
        name: str,
        arguments: dict[str, Any],
        timeout: float | None,
        progress: Progress | None,
        elicit: Elicit | None = None,
        clock: CallClock | None = None,
        resume: Resume | None = None,
    ) -> types.CallToolResult | tasks.CreatedTask:
        session = self._session
        if session is None or self._broken.is_set():
            raise CallFailed(Code.CONNECTION_CLOSED, LOST)
        call = asyncio.create_task(
            self._call(session, name, arguments, timeout, progress, elicit, clock, resume)
        )
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.cancel()
            await asyncio.wait({call}, timeout=CANCEL_GRACE)
            raise

    async def _call(
        self,
        session: ClientSession,
        name: str,
        arguments: dict[str, Any],
        timeout: float | None,
        progress: Progress | None = None,
        elicit: Elicit | None = None,
        clock: CallClock | None = None,
        resume: Resume | None = None,
    ) -> types.CallToolResult | tasks.CreatedTask:
        limit = self.timeouts.call if timeout is None else max(timeout, 0.0)
        result: Any = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._cancel_when_broken, tg.cancel_scope)
                with anyio.fail_after(limit) as timer, (clock or CallClock()).running(timer):
                    result = await self._tools_call(
                        session, name, arguments, progress or self._progress, elicit, resume
                    )
                tg.cancel_scope.cancel()
        except BaseException as exc:
            failure = self._call_failure(innermost(exc))
            if failure is None:
                raise
            raise failure from None
        if result is None:  # the session broke under the call
            if self._trace is not None and self._trace.too_large is not None:
                raise CallFailed(Code.INTERNAL_ERROR, _too_large(self._trace.too_large))
            raise CallFailed(Code.CONNECTION_CLOSED, LOST)
        if not isinstance(result, types.CallToolResult | tasks.CreatedTask):
            raise CallFailed(Code.INTERNAL_ERROR, f"unexpected result type {type(result).__name__}")
        return result

    async def _tools_call(
        self,
        session: ClientSession,
        name: str,
        arguments: dict[str, Any],
        progress: Progress,
        elicit: Elicit | None = None,
        resume: Resume | None = None,
    ) -> Any:
        """One tools/call; on 2026-07-28, its ``input_required`` rounds answered by the same
        callbacks that answer a 2025 server's requests (`_elicit`, `_sample`), except that an
        elicitation there belongs to this call, so it goes to this call's ``elicit``, told its
        round (`ASKING_ROUND`) when it is the round's only ask. ``resume``: the call starts from
        such a round's answer (the user answered in another process, or after the wait)."""
        rounds: list[types.InputRequiredResult] = []

        async def send(responses: types.InputResponses | None, state: str | None) -> Any:
            result = await session.call_tool(
                name,
                arguments,
                progress_callback=progress,
                input_responses=responses,
                request_state=state,
                allow_input_required=True,
                allow_claimed=True,  # a `tasks.CreatedTask` where the server made the call a task
            )
            if isinstance(result, types.InputRequiredResult):
                rounds.append(result)
            return result

        async def dispatch(key: str, request: types.InputRequest) -> Any:
            single = len(rounds[-1].input_requests or {}) == 1
            asking = InputRound(key, rounds[-1].request_state) if single else None
            return await self._answer_input(session, key, request, elicit, asking)

        if resume is None:
            result = await send(None, None)
        else:
            answers: types.InputResponses = {resume.round.key: resume.answer}
            result = await send(answers, resume.round.request_state)
        if isinstance(result, types.InputRequiredResult):
            result = await run_input_required_driver(result, dispatch=dispatch, retry=send)
        return result

    async def _answer_input(
        self,
        session: ClientSession,
        key: str,
        request: types.InputRequest,
        elicit: Elicit | None,
        asking: InputRound | None = None,
    ) -> Any:
        """A request the server embedded in a result (a 2026-07-28 ``input_required`` round, a
        task's ``inputRequests``), answered by the callbacks that answer it sent plainly, except
        that an elicitation belongs to this call, so it goes to the call's ``elicit``, told its
        round (``asking``, `ASKING_ROUND`) when the call can be resumed from its answer."""
        if (
            isinstance(request, types.ElicitRequest)
            and self.hooks is None
            and self.features.elicitation != "decline"
        ):
            token = ASKING_ROUND.set(asking)
            try:
                return await self._answer_elicitation(elicit, request.params)
            finally:
                ASKING_ROUND.reset(token)
        context = ClientRequestContext(session=session, request_id=key)
        return await session.dispatch_input_request(context, request)

    async def answer_input(
        self, key: str, request: types.InputRequest, handlers: ClientHandlers
    ) -> types.InputResponse | types.ErrorData:
        """A task's input request (`tasks.ExtensionTaskCall`), answered with the call's handlers."""
        session = self._session
        if session is None or self._broken.is_set():
            raise CallFailed(Code.CONNECTION_CLOSED, LOST)
        answer: types.InputResponse | types.ErrorData = await self._answer_input(
            session, key, request, handlers.elicit
        )
        return answer

    async def request(
        self, send: Callable[[ClientSession], Awaitable[T]], clock: CallClock | None = None
    ) -> T:
        """Any other request (``send`` makes it on the SDK's session) within the call timeout,
        failing fast when the transport breaks; raises `CallFailed` with the server's own error
        code and message. A cancelled caller cancels it on the server. ``clock``: the request
        is part of a call whose bounds stop while the user is asked (a task's tasks/result)."""
        session = self._session
        if session is None or self._broken.is_set():
            raise CallFailed(Code.CONNECTION_CLOSED, LOST)
        call = asyncio.create_task(self._request(send(session), clock))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.cancel()
            await asyncio.wait({call}, timeout=CANCEL_GRACE)
            raise

    async def _request(self, sent: Awaitable[T], clock: CallClock | None = None) -> T:
        done: list[T] = []
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._cancel_when_broken, tg.cancel_scope)
                with anyio.fail_after(self.timeouts.call) as timer, (clock or CallClock()).running(timer):
                    done.append(await sent)
                tg.cancel_scope.cancel()
        except BaseException as exc:
            failure = self._call_failure(innermost(exc))
            if failure is None:
                raise
            raise failure from None
        if not done:  # the session broke under the request
            raise CallFailed(Code.CONNECTION_CLOSED, LOST)
        return done[0]

    async def _cancel_when_broken(self, scope: anyio.CancelScope) -> None:
        await self._broken.wait()
        scope.cancel()

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        logger.debug("MCP progress from %s: %s/%s", self.name, progress, total)

    # -- the owner task -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            for i, transport in enumerate(self._transports):
                self._trace = transport.trace
                try:
                    await self._serve(transport)
                    return
                except Exception:  # task groups wrap it in an ExceptionGroup
                    last = i + 1 == len(self._transports)
                    if last or self._opened.done() or not self._refused(transport):
                        raise
                    logger.info(
                        "MCP server %s refused %s; trying the next transport", self.name, transport.kind
                    )
        except BaseException as exc:
            if not self._opened.done():
                self._opened.set_exception(self._open_failure(innermost(exc)))
            elif not isinstance(exc, asyncio.CancelledError):
                self.last_error = self.redact(describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._broken.set()
            self._session = None
            if not self._opened.done():
                self._opened.set_exception(OpenFailed("the session closed"))
            self._closed.set()

    async def _serve(self, transport: Transport) -> None:
        timeouts = self.timeouts
        with anyio.CancelScope(deadline=anyio.current_time() + timeouts.open) as opening:
            async with (
                transport.open() as (read, write),
                ClientSession(
                    read, write, message_handler=self._on_message, **self._callbacks(), **self._extensions()
                ) as session,
            ):
                with anyio.fail_after(timeouts.initialize):
                    await self._negotiate(session)
                self.capabilities = session.server_capabilities or types.ServerCapabilities()
                self.instructions = session.instructions
                if self.capabilities.tools is not None:  # a server of prompts or resources only
                    self.tools = await self._list(session)
                opening.deadline = math.inf
                self.server_name = session.server_info.name if session.server_info else None
                self.transport = transport.kind
                self._session = session
                self._opened.set_result(None)
                metrics.session_opened(self.kind)
                try:
                    await self._until_stopped_or_broken()
                finally:
                    metrics.session_closed(self.kind)
        if opening.cancelled_caught:
            raise TimeoutError(f"no answer within {timeouts.open:g}s")

    async def _negotiate(self, session: ClientSession) -> None:
        if self.features.protocol == "auto":  # server/discover (2026-07-28), else initialize
            await negotiate_auto(session)
        else:
            await session.initialize()

    async def _until_stopped_or_broken(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        broken = asyncio.ensure_future(self._broken.wait())
        try:
            await asyncio.wait([stop, broken], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            broken.cancel()

    # -- what the server asks of us (servers.client_handlers) -------------------------------

    def _callbacks(self) -> dict[str, Any]:
        """The SDK callbacks: each declares its capability, so only what the policy offers; a
        /mcp client's own session offers what that client offered, and the client answers."""
        if self.hooks is not None:
            return self.hooks.callbacks()
        callbacks: dict[str, Any] = {"logging_callback": self._log}
        if self.features.elicitation != "decline":
            callbacks["elicitation_callback"] = self._elicit
        if self.features.sampling is not None:
            callbacks["sampling_callback"] = self._sample
        return callbacks

    def _extensions(self) -> dict[str, Any]:
        """The 2026-07-28 tasks extension, declared unless ``tasks: false`` (`servers.tasks`)."""
        return tasks.claim() if self.features.tasks else {}

    async def _log(self, params: types.LoggingMessageNotificationParams) -> None:
        client_handlers.log_message(self.name, params)

    async def _elicit(self, _context: Any, params: types.ElicitRequestParams) -> Any:
        return await self._answer_elicitation(self._in_flight.elicitor(), params)

    async def _answer_elicitation(self, elicit: Elicit | None, params: types.ElicitRequestParams) -> Any:
        """The user's answer where the policy is ``ask`` and the call's response can ask (it
        opted in: `loop.elicitation`), else the policy's."""
        if elicit is not None and self.features.elicitation == "ask":
            return await elicit(params)
        answer = client_handlers.policy_answer(self.features, params)
        logger.info("MCP server %s asked for input (%s): %s", self.name, params.mode, answer.action)
        return answer

    async def _sample(self, _context: Any, params: types.CreateMessageRequestParams) -> Any:
        policy = self.features.sampling
        sample = self._in_flight.sampler()
        if policy is None:
            return client_handlers.refuse_sampling("not enabled for this server")
        if sample is None:
            reason = (
                "no tool call of ours is running"
                if not self._in_flight
                else "calls of several requests are running"
            )
            return client_handlers.refuse_sampling(f"{reason}, so no response's model can answer")
        capped = params.model_copy(update={"max_tokens": min(params.max_tokens, policy.max_tokens)})
        with spans.span("mcp.sampling/createMessage", **{"mcp.server": self.metrics_label}):
            return await sample(self.name, capped, policy.max_tokens_per_response)

    def _refused(self, transport: Transport) -> bool:
        """Streamable HTTP's ``initialize`` got 400/404/405: the server may speak HTTP+SSE."""
        trace = transport.trace
        return trace is not None and trace.status("initialize") in FALLBACK_STATUSES

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            logger.info("MCP server %s: transport error: %s", self.name, describe(message))
            self._mark_broken(describe(message))
        elif isinstance(message, types.ToolListChangedNotification):
            self._refresh = asyncio.create_task(self._refresh_tools())
        elif isinstance(message, types.ProgressNotification):
            params = message.params
            follower = self._task_progress.get(str(params.progress_token))
            if follower is not None:
                await follower(params.progress, params.total, params.message)
        if isinstance(message, _PASSED) and self.hooks is not None and self.hooks.notification is not None:
            await self.hooks.notification(message)

    async def _refresh_tools(self) -> None:
        session = self._session
        if session is None:
            return
        try:
            self.tools = await self._list(session)
            logger.info("MCP server %s tools changed: %d tools", self.name, len(self.tools))
        except Exception as exc:
            self._mark_broken(describe(exc))
            return
        if self.on_tools_changed is not None:
            self.on_tools_changed()

    async def _list(self, session: ClientSession) -> tuple[types.Tool, ...]:
        ok = False
        try:
            with anyio.fail_after(self.timeouts.list):
                tools = checked_tools((await session.list_tools()).tools)
            ok = True
            return tools
        finally:
            metrics.tool_list(self.metrics_label, ok)

    def _mark_broken(self, reason: str) -> None:
        self.last_error = self.redact(reason)
        self._broken.set()

    # -- foreign errors -> ours -----------------------------------------------------------

    def _open_failure(self, exc: BaseException) -> OpenFailed:
        trace = self._trace
        status = redirect = None
        if trace is not None:
            status = trace.status("initialize") or trace.status("tools/list") or trace.status("GET")
            redirect = next(iter(trace.redirects.values()), None)
        if isinstance(exc, TimeoutError):
            message = f"no answer within {self.timeouts.initialize:g}s"
        elif trace is not None and trace.too_large is not None:
            message = f"a response exceeded the {trace.too_large}-byte limit"
        elif redirect is not None:
            message = "the server answered with a redirect, which is not followed"
        elif status is not None and status >= 400:
            message = f"HTTP {status}"
        elif isinstance(exc, MCPError):
            message = exc.error.message
        else:
            message = describe(exc)
        return OpenFailed(self.redact(message), status=status, redirect=redirect)

    def _call_failure(self, exc: BaseException) -> CallFailed | None:
        """A call's error as `CallFailed` (redacted, with the HTTP status when there was one);
        None for cancellation, which must propagate."""
        trace = self._trace
        if isinstance(exc, TimeoutError):
            return CallFailed(Code.REQUEST_TIMEOUT, f"tool call timed out after {self.timeouts.call:g}s")
        if trace is not None and trace.too_large is not None:
            return CallFailed(Code.INTERNAL_ERROR, _too_large(trace.too_large))
        status = trace.status("tools/call") if trace is not None else None
        if isinstance(exc, MCPError):
            if status is not None and status >= 400:
                return CallFailed(status, f"the MCP server answered HTTP {status}", http_status=status)
            code, message = exc.error.code, exc.error.message
            if code == Code.PARSE_ERROR:  # the SDK's text quotes the body at length
                return CallFailed(code, "the MCP server's answer is not valid JSON-RPC")
            if code == Code.CONNECTION_CLOSED:
                self._mark_broken(message)
                return CallFailed(code, LOST if message == _SDK_CLOSED else self.redact(f"{LOST}: {message}"))
            return CallFailed(code, self.redact(message))
        if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
            self._mark_broken(describe(exc))
            return CallFailed(Code.CONNECTION_CLOSED, LOST)
        if isinstance(exc, httpx2.HTTPError):
            return CallFailed(Code.CONNECTION_CLOSED, self.redact(f"{LOST}: {type(exc).__name__}"))
        if isinstance(exc, Exception):
            text = f"invalid answer from the MCP server: {describe(exc)}"
            return CallFailed(Code.INTERNAL_ERROR, self.redact(text))
        return None


async def _own_task(work: Awaitable[T]) -> T:
    """``work`` in a task of its own that the caller's cancellation cancels plainly (see the
    module's docstring), given `CANCEL_GRACE` and the task's own to tell the server."""
    call = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        call.cancel()
        await asyncio.wait({call}, timeout=CANCEL_GRACE + tasks.CANCEL_GRACE)
        raise


def describe(exc: BaseException) -> str:
    """One line for logs and status: the innermost cause, without tracebacks."""
    exc = innermost(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def innermost(exc: BaseException) -> BaseException:
    """The first leaf of nested exception groups (what anyio task groups raise)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _too_large(limit: int) -> str:
    return f"the MCP server's response exceeded the {limit}-byte limit"
