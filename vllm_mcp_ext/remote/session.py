"""One MCP session to a remote server, opened with the SDK's transports over a pinned client.

The session lives in one owner task (anyio context managers are entered and left in the same
task); requests borrow it through the pool. Streamable HTTP is tried first; when the server
answers ``initialize`` with 400, 404 or 405 the session is opened again over HTTP+SSE (the MCP
backwards-compatibility rule), unless a transport hint or a URL ending in ``/sse`` chose already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import httpx2
from mcp import ClientSession, types
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.remote.http import HttpTrace, http_client
from vllm_mcp_ext.remote.policy import Target
from vllm_mcp_ext.remote.redact import Redactor
from vllm_mcp_ext.servers.connection import (
    CONNECTION_CLOSED,
    LOST,
    REQUEST_TIMEOUT,
    CallFailed,
    describe,
    innermost,
)

logger = logging.getLogger(__name__)

TransportKind = Literal["streamable_http", "sse"]
FALLBACK_STATUSES = (400, 404, 405)
INTERNAL_ERROR = -32603
PARSE_ERROR = -32700
CLOSE_GRACE = 5.0  # seconds a closing session may take (DELETE, stream shutdown)
CANCEL_GRACE = 2.0  # seconds a cancelled call may take to tell the server


class OpenFailed(Exception):
    """The session could not be opened; the message is redacted and safe to show."""

    def __init__(self, message: str, *, status: int | None = None, redirect: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.redirect = redirect


class _InitRejected(Exception):
    """Streamable HTTP ``initialize`` got 400/404/405: try HTTP+SSE."""


class RemoteSession:
    def __init__(
        self,
        target: Target,
        headers: Mapping[str, str],
        transport: TransportKind | None,
        settings: RemoteSettings,
        redactor: Redactor,
    ):
        self.target = target
        self.settings = settings
        self.redactor = redactor
        self.tools: tuple[types.Tool, ...] = ()
        self.transport: TransportKind | None = None
        self.retired = False  # no new borrowers: it failed once, or it is closing
        self._headers = dict(headers)
        self._hint = transport
        self._trace = HttpTrace()
        self._session: ClientSession | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opened.add_done_callback(_retrieve)  # nobody may be waiting when it fails
        self._stop = asyncio.Event()
        self._broken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp-remote:{self.target.origin}")

    async def wait_open(self) -> None:
        """Wait until initialized and listed; raises `OpenFailed`."""
        budget = self.settings.connect_timeout + self.settings.list_timeout + 1
        try:
            await asyncio.wait_for(asyncio.shield(self._opened), budget)
        except TimeoutError:
            raise OpenFailed(f"no answer within {budget - 1:g}s") from None

    async def close(self) -> None:
        self.retired = True
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), CLOSE_GRACE)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- calls ----------------------------------------------------------------------------

    async def call_tool(
        self, name: str, arguments: dict[str, Any], timeout: float | None = None
    ) -> types.CallToolResult:
        """One tools/call, bounded by the call timeout, failing fast when the transport breaks.

        When the caller is cancelled (client disconnect), the call is cancelled with a plain
        ``Task.cancel()`` in its own task, so the SDK sends ``notifications/cancelled`` to the
        server. (A cancellation that arrives from an anyio cancel scope, as Starlette's
        disconnect handling does, carries that scope's message, and the SDK's courtesy cancel
        would then never reach the wire.)"""
        session = self._session
        if session is None or self._broken.is_set():
            raise CallFailed(CONNECTION_CLOSED, LOST)
        call = asyncio.create_task(self._call(session, name, arguments, timeout))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.cancel()
            await asyncio.wait({call}, timeout=CANCEL_GRACE)
            raise

    async def _call(
        self, session: ClientSession, name: str, arguments: dict[str, Any], timeout: float | None
    ) -> types.CallToolResult:
        limit = self.settings.call_timeout if timeout is None else max(timeout, 0.0)
        result: types.CallToolResult | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._cancel_when_broken, tg.cancel_scope)
                with anyio.fail_after(limit):
                    result = await session.call_tool(name, arguments, progress_callback=self._progress)
                tg.cancel_scope.cancel()
        except BaseException as exc:
            failure = self._failure(innermost(exc), self.settings.call_timeout)
            if failure is None:
                raise
            self.retired = True
            raise failure from None
        if result is None:
            self.retired = True
            raise CallFailed(CONNECTION_CLOSED, LOST)
        return result

    async def _cancel_when_broken(self, scope: anyio.CancelScope) -> None:
        await self._broken.wait()
        scope.cancel()

    async def _progress(self, progress: float, total: float | None, message: str | None) -> None:
        logger.debug("MCP progress from %s: %s/%s", self.target.origin, progress, total)

    def _failure(self, exc: BaseException, timeout: float) -> CallFailed | None:
        """A call error as `CallFailed` (redacted, with the HTTP status when there was one);
        None for cancellation, which must propagate."""
        if isinstance(exc, TimeoutError):
            return CallFailed(REQUEST_TIMEOUT, f"tool call timed out after {timeout:g}s")
        if self._trace.too_large:
            limit = self.settings.max_response_bytes
            return CallFailed(INTERNAL_ERROR, f"the MCP server's response exceeded the {limit}-byte limit")
        status = self._trace.status("tools/call")
        if isinstance(exc, MCPError):
            if status is not None and status >= 400:
                return CallFailed(status, f"the MCP server answered HTTP {status}", http_status=status)
            if exc.error.code == PARSE_ERROR:  # the SDK's text quotes the body at length
                return CallFailed(PARSE_ERROR, "the MCP server's answer is not valid JSON-RPC")
            return CallFailed(exc.error.code, self.redactor.text(exc.error.message))
        if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
            return CallFailed(CONNECTION_CLOSED, LOST)
        if isinstance(exc, httpx2.HTTPError):
            return CallFailed(CONNECTION_CLOSED, self.redactor.text(f"{LOST}: {type(exc).__name__}"))
        if isinstance(exc, Exception):
            return CallFailed(
                INTERNAL_ERROR, self.redactor.text(f"invalid answer from the MCP server: {describe(exc)}")
            )
        return None

    # -- the owner task -------------------------------------------------------------------

    async def _run(self) -> None:
        kinds: list[TransportKind] = (
            [self._hint] if self._hint is not None else ["streamable_http", "sse"]  # type: ignore[list-item]
        )
        try:
            for i, kind in enumerate(kinds):
                try:
                    await self._serve(kind)
                    return
                except Exception as exc:  # task groups wrap it in an ExceptionGroup
                    if not isinstance(innermost(exc), _InitRejected) or i + 1 == len(kinds):
                        raise
                    logger.info("MCP server %s refused streamable HTTP; trying SSE", self.target.origin)
                    self._trace = HttpTrace()
        except BaseException as exc:
            if not self._opened.done():
                self._opened.set_exception(self._open_error(innermost(exc)))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.retired = True
            self._broken.set()
            self._session = None
            if not self._opened.done():
                self._opened.set_exception(OpenFailed("the session closed"))

    async def _serve(self, kind: TransportKind) -> None:
        settings = self.settings
        budget = settings.connect_timeout + settings.list_timeout
        # Opening (an SSE GET that never sends its endpoint included) has a deadline too.
        with anyio.CancelScope(deadline=anyio.current_time() + budget) as opening:
            async with (
                self._streams(kind) as (read, write),
                ClientSession(read, write, message_handler=self._on_message) as session,
            ):
                try:
                    with anyio.fail_after(settings.connect_timeout):
                        await session.initialize()
                except MCPError:
                    if kind == "streamable_http" and self._trace.status("initialize") in FALLBACK_STATUSES:
                        raise _InitRejected() from None
                    raise
                with anyio.fail_after(settings.list_timeout):
                    self.tools = tuple((await session.list_tools()).tools)
                opening.deadline = math.inf
                self.transport = kind
                self._session = session
                self._opened.set_result(None)
                logger.info("remote MCP server %s open over %s", self.target.origin, kind)
                stop = asyncio.ensure_future(self._stop.wait())
                broken = asyncio.ensure_future(self._broken.wait())
                try:
                    await asyncio.wait([stop, broken], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    broken.cancel()
        if opening.cancelled_caught:
            raise TimeoutError(f"no answer within {budget:g}s")

    @asynccontextmanager
    async def _streams(self, kind: TransportKind) -> AsyncIterator[TransportStreams]:
        def client(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return http_client(
                self.target,
                self._headers,
                connect_timeout=self.settings.connect_timeout,
                max_response_bytes=self.settings.max_response_bytes,
                trace=self._trace,
            )

        if kind == "sse":
            async with sse_client(self.target.url, httpx_client_factory=client) as streams:
                yield streams
            return
        async with (
            client() as http,
            streamable_http_client(
                self.target.url, http_client=http, max_sse_event_size=self.settings.max_response_bytes
            ) as streams,
        ):
            yield streams

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            logger.info("remote MCP server %s: transport error: %s", self.target.origin, describe(message))
            self.retired = True
            self._broken.set()

    def _open_error(self, exc: BaseException) -> OpenFailed:
        trace = self._trace
        status = trace.status("initialize") or trace.status("tools/list") or trace.status("GET")
        redirect = next(iter(trace.redirects.values()), None)
        if isinstance(exc, TimeoutError):
            message = f"no answer within {self.settings.connect_timeout:g}s"
        elif trace.too_large:
            message = f"a response exceeded the {self.settings.max_response_bytes}-byte limit"
        elif redirect is not None:
            message = "the server answered with a redirect, which is not followed"
        elif status is not None and status >= 400:
            message = f"HTTP {status}"
        elif isinstance(exc, MCPError):
            message = exc.error.message
        else:
            message = describe(exc)
        return OpenFailed(self.redactor.text(message), status=status, redirect=redirect)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
