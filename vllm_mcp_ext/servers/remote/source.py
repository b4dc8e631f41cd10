"""`RemoteSource`: the `ToolSource` of one request's ``{"type": "mcp", "server_url": ...}`` tool.

It is lazy: nothing is resolved or opened until the loop first lists or calls. The first use
admits the URL (DNS + policy), borrows a pooled session, and keeps it for the request; `release`
gives it back when the response is over. Everything it returns is scrubbed of the request's
secrets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from mcp import types

from vllm_mcp_ext import redact
from vllm_mcp_ext.config.tool_servers import TransportKind
from vllm_mcp_ext.redact import Redactor
from vllm_mcp_ext.servers.remote.policy import PolicyRejected, Target, Unresolvable, UrlPolicy
from vllm_mcp_ext.servers.remote.pool import Lease, SessionPool
from vllm_mcp_ext.types.client_handlers import NO_HANDLERS, ClientHandlers
from vllm_mcp_ext.types.source import CallFailed, Code, OpenFailed, ServerUnavailable

logger = logging.getLogger(__name__)


class RemoteSource:
    def __init__(
        self,
        label: str,
        target: Target,
        headers: Mapping[str, str],
        transport: TransportKind | None,
        param: str,
        policy: UrlPolicy,
        pool: SessionPool,
    ):
        self._label = label
        self._target = target  # statically checked; admitted (resolved) on first use
        self._headers = dict(headers)
        self._transport = transport
        self._param = param
        self._policy = policy
        self._pool = pool
        self.redactor = Redactor(redact.secrets_of(self._headers))
        self._opening: asyncio.Task[Lease] | None = None
        self._released = False
        self._registered = False

    @property
    def label(self) -> str:
        return self._label

    async def current_tools(self) -> tuple[types.Tool, ...]:
        lease = await self._lease()
        return tuple(self.redactor.model(tool) for tool in lease.session.tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, handlers: ClientHandlers = NO_HANDLERS
    ) -> types.CallToolResult:
        try:
            lease = await self._lease()
        except PolicyRejected as exc:
            raise CallFailed(Code.INVALID_REQUEST, exc.message) from None
        settings = self._pool.settings
        slot = self._pool.slot(self._target.url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.call_timeout  # waiting for a slot counts
        try:
            async with asyncio.timeout_at(deadline):
                await slot.acquire()
        except TimeoutError:
            raise CallFailed(
                Code.CONNECTION_CLOSED,
                f"too many calls in flight to this MCP server (limit {settings.max_concurrent_calls})",
            ) from None
        try:
            result = await lease.session.call_tool(
                name, arguments, timeout=deadline - loop.time(), handlers=handlers
            )
        except CallFailed:
            lease.session.retire()  # a session that failed once gets no new borrowers
            raise
        finally:
            slot.release()
        return self.redactor.model(result)

    def release(self) -> None:
        """Give the session back to the pool; safe to call more than once, and before first use."""
        if self._released:
            return
        self._released = True
        if self._registered:
            redact.unregister(self.redactor.secrets)
        task = self._opening
        if task is None:
            return
        if task.done():
            self._settle(task)
        else:
            task.add_done_callback(self._settle)  # still opening: give it back when it is open

    # -- internals ------------------------------------------------------------------------

    async def _lease(self) -> Lease:
        if self._released:
            raise ServerUnavailable(f"MCP server {self._target.origin}: the request is over")
        if self._opening is None:
            # Logged lines are scrubbed of this request's secrets from here to `release`.
            redact.register(self.redactor.secrets)
            self._registered = True
            self._opening = asyncio.create_task(self._open())
        # Shielded: one waiter giving up must not cancel the opening the others share.
        return await asyncio.shield(self._opening)

    async def _open(self) -> Lease:
        origin = self._target.origin
        try:
            target = await self._policy.admit(self._target.url)
        except PolicyRejected as exc:
            raise exc.at(self._param) from None
        except Unresolvable as exc:
            raise ServerUnavailable(f"MCP server {origin} is unavailable: {exc}") from None
        try:
            return await self._pool.acquire(target, self._transport, self._headers, self.redactor)
        except OpenFailed as exc:
            if exc.redirect is not None:
                rejected = self._policy.check_redirect(exc.redirect)
                if rejected is not None:
                    raise rejected.at(self._param) from None
            raise ServerUnavailable(f"MCP server {origin} is unavailable: {exc.message}") from None

    def _settle(self, task: asyncio.Task[Lease]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._pool.release(task.result())
