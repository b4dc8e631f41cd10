"""One configured MCP server: a session kept open across requests, re-opened when it breaks.

Each session is an `McpSession`; this keeps one open, and opens the next when it ends: at once
when it had worked, else after an exponential backoff that a request needing the server cuts
short. Its snapshot is what ``GET /v1/mcp/servers`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mcp import types

from vllm_mcp_ext import redact
from vllm_mcp_ext.config import HttpServerSpec, ServerSpec
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import transports
from vllm_mcp_ext.servers.hooks import ClientHooks
from vllm_mcp_ext.servers.oauth import OAuthClients
from vllm_mcp_ext.servers.session import McpSession, Progress, Timeouts
from vllm_mcp_ext.servers.stdio import OutputCaps
from vllm_mcp_ext.servers.tasks import TaskPolling
from vllm_mcp_ext.types.client_handlers import NO_HANDLERS, ClientHandlers
from vllm_mcp_ext.types.source import CallFailed, Code, OpenFailed, ServerUnavailable

logger = logging.getLogger(__name__)

__all__ = ["ServerConnection", "ServerSnapshot", "ServerStatus"]


class ServerStatus(StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ServerSnapshot:
    label: str
    transport: str
    status: ServerStatus
    tool_count: int
    last_error: str | None


class ServerConnection:
    def __init__(
        self,
        spec: ServerSpec,
        settings: Settings,
        limits: Limits | None = None,
        *,
        oauth: OAuthClients | None = None,
    ):
        self.spec = spec
        self.settings = settings
        limits = limits or Limits()
        self._max_calls = limits.max_calls_per_server
        self.caps = OutputCaps(  # what a stdio server may write (servers/stdio.py)
            limits.max_stdio_message_bytes,
            limits.max_stdio_bytes_per_second,
            limits.max_stdio_log_bytes_per_second,
        )
        self.polling = TaskPolling(cap=limits.max_task_poll_interval)  # calls run as MCP tasks
        self.status = ServerStatus.CONNECTING
        self.last_error: str | None = None
        self.server_name: str | None = None
        self._timeouts = Timeouts(
            open=settings.connect_timeout,
            initialize=settings.connect_timeout,
            list=settings.connect_timeout,
            call=settings.call_timeout,
        )
        self._current: McpSession | None = None
        self._listed: McpSession | None = None  # the last session that opened: its tools
        self._attempted = asyncio.Event()  # set after each connection attempt, won or lost
        self._wake = asyncio.Event()
        self._backing_off = False  # waiting after a failed attempt
        self._wake_used = False  # a request already cut a backoff short: the next is waited out
        self._task: asyncio.Task[None] | None = None
        # told when the tool list may have changed (list_changed, a new session): the /mcp gateway
        self.listeners: list[Callable[[], None]] = []
        self._slots = asyncio.Semaphore(self._max_calls)  # tools/call in flight
        self._redactor = redact.Redactor(_secrets_of(spec))
        self._auth = None
        if isinstance(spec, HttpServerSpec):
            self._auth = (oauth or OAuthClients()).auth_for(spec.provisional_label, spec)

    def _redact(self, text: str) -> str:
        """An error as clients and logs see it: the server's URL shown without userinfo, query
        or fragment, and its credentials (header values, password, query tokens) masked."""
        if isinstance(self.spec, HttpServerSpec) and self.spec.url in text:
            text = text.replace(self.spec.url, redact.display_url(self.spec.url))
        return self._redactor.text(text)

    @property
    def label(self) -> str:
        if self.spec.label is not None:
            return self.spec.label
        return self.server_name or self.spec.provisional_label  # type: ignore[union-attr]

    @property
    def served(self) -> McpSession | None:
        """The last session that opened: what the server said it serves (capabilities,
        instructions), as of then."""
        return self._listed

    @property
    def tools(self) -> tuple[types.Tool, ...]:
        return self._listed.tools if self._listed is not None else ()

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
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def session(self) -> McpSession:
        """The open session, connecting now (bounded by the connect timeout) if needed."""
        current = self._current
        if current is not None and current.is_open:
            return current
        if self._backing_off:
            if self._wake_used:  # a failing server is not relaunched once per request
                raise ServerUnavailable(
                    f"MCP server {self.label!r} is unavailable: {self.last_error or 'not connected'}"
                )
            self._wake_used = True
        self._attempted.clear()
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), self.settings.connect_timeout)
        current = self._current
        if current is None or not current.is_open:
            raise ServerUnavailable(
                f"MCP server {self.label!r} is unavailable: {self.last_error or 'not connected'}"
            )
        return current

    async def current_tools(self) -> tuple[types.Tool, ...]:
        await self.session()
        return self.tools

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        progress: Progress | None = None,
        handlers: ClientHandlers = NO_HANDLERS,
    ) -> types.CallToolResult:
        session = await self.session()
        try:  # waiting for a slot counts against the call's own timeout
            async with asyncio.timeout(self.settings.call_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise CallFailed(
                Code.CONNECTION_CLOSED,
                f"too many calls in flight to MCP server {self.label!r} (limit {self._max_calls})",
            ) from None
        try:
            # a call run as a task polls on across a re-opened session (servers/tasks.py)
            return await session.call_tool(
                name, arguments, progress=progress, handlers=handlers, reopen=self.session
            )
        finally:
            self._slots.release()

    async def open_own_session(self, hooks: ClientHooks) -> McpSession:
        """A session of this server for one client of the ``/mcp`` proxy, apart from the shared
        one: its requests to its client go to ``hooks``. The caller closes it; raises
        `ServerUnavailable` when it does not open."""
        session = McpSession(
            self.label,
            [transports.configured(self.spec, self._auth)],
            self._timeouts,
            redact=self._redact,
            kind="proxied",
            hooks=hooks,
        )
        session.start(f"mcp-session:{self.label}:proxied")
        try:
            await session.wait_open()
        except OpenFailed as exc:
            await session.close()
            raise ServerUnavailable(f"MCP server {self.label!r} is unavailable: {exc.message}") from None
        return session

    def _tools_changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    # -- the owner task ------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 1.0
        try:
            while True:
                self._wake.clear()
                if await self._one_session():  # it worked, then broke: re-open at once
                    self.status = ServerStatus.CONNECTING
                    delay = 1.0
                    self._wake_used = False
                    continue
                self.status = ServerStatus.ERROR
                self._backing_off = True
                self._attempted.set()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    self._wake_used = False  # waited out in full: a request may cut the next one short
                finally:
                    self._backing_off = False
                delay = min(delay * 2, self.settings.retry_max_delay)
        finally:
            if self._current is not None:
                await self._current.close()

    async def _one_session(self) -> bool:
        """Open a session and keep it until it ends; whether it opened."""
        session = self._current = McpSession(
            self.label,
            [transports.configured(self.spec, self._auth, self.caps)],
            self._timeouts,
            redact=self._redact,
            on_tools_changed=self._tools_changed,
            features=self.spec.features,
            polling=self.polling,
        )
        session.start(f"mcp-session:{self.label}")
        try:
            await session.wait_open()
        except OpenFailed as exc:
            self.last_error = exc.message
            logger.warning("MCP server %r unavailable (will retry): %s", self.label, exc.message)
            await session.close()
            return False
        self.server_name = session.server_name
        if self._listed is not None:  # a session again: its tools may differ
            self._tools_changed()
        self._listed = session
        self.status = ServerStatus.READY
        self.last_error = None
        self._attempted.set()
        logger.info("MCP server %r ready with %d tools", self.label, len(session.tools))
        await session.wait_closed()
        self.last_error = session.last_error
        logger.info("MCP server %r session ended: %s", self.label, session.last_error)
        return True


def _secrets_of(spec: ServerSpec) -> tuple[str, ...]:
    if not isinstance(spec, HttpServerSpec):
        return ()
    oauth = spec.oauth.secrets if spec.oauth is not None else ()
    return redact.secrets_of(spec.headers) + redact.url_secrets(spec.url) + oauth
