"""One configured MCP server: a session kept open across requests, re-opened when it breaks.

The session lives in one background task (anyio context managers must be entered and left in the
same task); requests borrow it to list and call tools. A server that cannot be reached is retried
with exponential backoff, and immediately when a request needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anyio
from mcp import ClientSession, types
from mcp.shared.exceptions import MCPError

from vllm_mcp_ext.config import ServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import McpExtError
from vllm_mcp_ext.servers.transports import open_streams

logger = logging.getLogger(__name__)

# JSON-RPC codes used for failures that happen on our side of the wire.
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001
LOST = "connection to the MCP server was lost"


class ServerStatus(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    ERROR = "error"
    STOPPED = "stopped"


class ServerUnavailable(McpExtError):
    """The server could not be reached; carries a message safe to show a client."""


class CallFailed(Exception):
    """A tools/call that did not come back as a result: protocol error, timeout, lost session."""

    def __init__(self, code: int, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status  # set when the server answered with an HTTP error status


@dataclass(frozen=True)
class ServerSnapshot:
    label: str
    transport: str
    status: ServerStatus
    tool_count: int
    last_error: str | None


class ServerConnection:
    def __init__(self, spec: ServerSpec, settings: Settings):
        self.spec = spec
        self.settings = settings
        self.status = ServerStatus.CONNECTING
        self.last_error: str | None = None
        self.server_name: str | None = None
        self.tools: tuple[types.Tool, ...] = ()
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()  # set after each connection attempt, won or lost
        self._broken = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._connected_once = False

    @property
    def label(self) -> str:
        if self.spec.label is not None:
            return self.spec.label
        return self.server_name or self.spec.provisional_label  # type: ignore[union-attr]

    def snapshot(self) -> ServerSnapshot:
        return ServerSnapshot(
            label=self.label,
            transport=self.spec.transport,
            status=self.status,
            tool_count=len(self.tools),
            last_error=self.last_error,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp-server:{self.label}")

    async def wait_first_attempt(self) -> None:
        await self._attempted.wait()

    async def stop(self) -> None:
        self.status = ServerStatus.STOPPED
        for task in (self._refresh, self._task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def session(self) -> ClientSession:
        """The open session, connecting now (bounded by the connect timeout) if needed."""
        if self._session is not None and self._ready.is_set():
            return self._session
        self._attempted.clear()
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), self.settings.connect_timeout)
        if self._session is None:
            raise ServerUnavailable(
                f"MCP server {self.label!r} is unavailable: {self.last_error or 'not connected'}"
            )
        return self._session

    async def current_tools(self) -> tuple[types.Tool, ...]:
        await self.session()
        return self.tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        session = await self.session()
        try:
            with anyio.fail_after(self.settings.call_timeout):
                result = await session.call_tool(name, arguments)
        except TimeoutError:
            raise CallFailed(
                REQUEST_TIMEOUT, f"tool call timed out after {self.settings.call_timeout:g}s"
            ) from None
        except MCPError as exc:
            if exc.error.code == CONNECTION_CLOSED:
                self._mark_broken(exc.error.message)
                raise CallFailed(CONNECTION_CLOSED, LOST) from None
            raise CallFailed(exc.error.code, exc.error.message) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            self._mark_broken(describe(exc))
            raise CallFailed(CONNECTION_CLOSED, LOST) from None
        if not isinstance(result, types.CallToolResult):
            raise CallFailed(-32603, f"unexpected result type {type(result).__name__}")
        return result

    # -- the owner task ------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 1.0
        while True:
            self._broken.clear()
            self._wake.clear()
            self._connected_once = False
            try:
                await self._serve_one_session()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._note_error(describe(exc))
            finally:
                self._session = None
                self._ready.clear()
            if self._connected_once:  # it worked, then broke: re-open at once
                self.status = ServerStatus.CONNECTING
                delay = 1.0
                continue
            self.status = ServerStatus.ERROR
            self._attempted.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, self.settings.retry_max_delay)

    async def _serve_one_session(self) -> None:
        with anyio.CancelScope() as scope:
            scope.deadline = anyio.current_time() + self.settings.connect_timeout
            async with (
                open_streams(self.spec) as (read, write),
                ClientSession(read, write, message_handler=self._on_message) as session,
            ):
                init = await session.initialize()
                self.server_name = init.server_info.name
                self.tools = tuple((await session.list_tools()).tools)
                scope.deadline = math.inf
                self._session = session
                self._connected_once = True
                self.status = ServerStatus.READY
                self.last_error = None
                self._ready.set()
                self._attempted.set()
                logger.info("MCP server %r ready with %d tools", self.label, len(self.tools))
                await self._broken.wait()
        if scope.cancelled_caught:
            raise TimeoutError(f"no answer within {self.settings.connect_timeout:g}s")

    def _note_error(self, message: str) -> None:
        self.last_error = message
        if self._connected_once:
            logger.info("MCP server %r session ended: %s", self.label, message)
        else:
            logger.warning("MCP server %r unavailable (will retry): %s", self.label, message)

    def _mark_broken(self, reason: str) -> None:
        self.last_error = reason
        self._ready.clear()
        self._broken.set()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            self._mark_broken(describe(message))
        elif isinstance(message, types.ToolListChangedNotification):
            self._refresh = asyncio.create_task(self._refresh_tools())

    async def _refresh_tools(self) -> None:
        session = self._session
        if session is None:
            return
        try:
            self.tools = tuple((await session.list_tools()).tools)
            logger.info("MCP server %r tools changed: %d tools", self.label, len(self.tools))
        except Exception as exc:
            self._mark_broken(describe(exc))


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
