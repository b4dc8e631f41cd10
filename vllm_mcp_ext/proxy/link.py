"""`ClientLink`: one ``/mcp`` client (one MCP session) and the configured servers' sessions
opened for it alone.

The shared session of a configured server (`ServerConnection`) serves the model loop; it cannot
tell whose call a server's ``sampling/createMessage`` belongs to. A proxied client gets its own
session of each server it uses, opened on first use and closed with its ``/mcp`` session, so a
server's requests and notifications to its client have exactly one place to go:

- during a call to that server: the calling request's own stream (``related_request_id``), as
  the server meant it. Two calls at once from one client to one server: the latest.
- otherwise: the client's session-wide stream (``GET /mcp``).

The server's own session advertises sampling, elicitation and roots only when this client did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from mcp import types
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel

from vllm_mcp_ext.servers import McpSession, ServerStatus, ToolServerRegistry
from vllm_mcp_ext.servers.hooks import ClientHooks
from vllm_mcp_ext.types.source import ServerUnavailable

logger = logging.getLogger(__name__)


class ClientLink:
    def __init__(self, registry: ToolServerRegistry, aggregate: bool):
        self._registry = registry
        self._aggregate = aggregate  # log messages then name their server
        self._sessions: dict[str, McpSession] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._calls: dict[str, list[tuple[ServerSession, types.RequestId | None]]] = {}
        self._client: ServerSession | None = None  # the latest request's: for session-wide messages
        self._closed = False

    def seen(self, session: ServerSession) -> None:
        self._client = session

    async def session(self, label: str) -> McpSession:
        """This client's session of server ``label``; raises `ServerUnavailable`."""
        async with self._locks.setdefault(label, asyncio.Lock()):
            current = self._sessions.get(label)
            if current is not None and current.is_open:
                return current
            conn = self._registry.get(label)
            if conn is None or self._closed:
                raise ServerUnavailable(f"MCP server {label!r} is not configured")
            if conn.status is ServerStatus.ERROR:  # the shared session is backing off: so do we
                raise ServerUnavailable(f"MCP server {label!r} is unavailable: {conn.last_error}")
            if current is not None:
                await current.close()
            session = self._sessions[label] = await conn.open_own_session(self._hooks(label))
            return session

    @contextlib.contextmanager
    def calling(
        self, label: str, session: ServerSession, request_id: types.RequestId | None
    ) -> Iterator[None]:
        """While a request to ``label`` is in flight, that server's requests go to its stream."""
        calls = self._calls.setdefault(label, [])
        entry = (session, request_id)
        calls.append(entry)
        try:
            yield
        finally:
            calls.remove(entry)

    async def aclose(self) -> None:
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    # -- the server's messages to its client ------------------------------------------------

    def _target(self, label: str) -> tuple[ServerSession | None, types.RequestId | None]:
        calls = self._calls.get(label)
        if calls:
            return calls[-1]
        return self._client, None

    def _hooks(self, label: str) -> ClientHooks:
        client = self._client
        caps = client.client_capabilities if client is not None else None
        caps = caps or types.ClientCapabilities()

        async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
            result = types.CreateMessageResultWithTools if params.tools else types.CreateMessageResult
            return await self._ask(label, types.CreateMessageRequest(params=params), result)

        async def elicitation(context: Any, params: types.ElicitRequestParams) -> Any:
            return await self._ask(label, types.ElicitRequest(params=params), types.ElicitResult)

        async def roots(context: Any) -> Any:
            return await self._ask(label, types.ListRootsRequest(), types.ListRootsResult)

        async def log(params: types.LoggingMessageNotificationParams) -> None:
            if self._aggregate:  # which server said it
                name = label if params.logger is None else f"{label}/{params.logger}"
                params = params.model_copy(update={"logger": name})
            await self._tell(label, types.LoggingMessageNotification(params=params), scoped=True)

        async def notification(message: types.ServerNotification) -> None:
            await self._tell(label, message, scoped=False)

        return ClientHooks(
            sampling=sampling if caps.sampling is not None else None,
            elicitation=elicitation if caps.elicitation is not None else None,
            roots=roots if caps.roots is not None else None,
            logging=log,
            notification=notification,
        )

    async def _ask(self, label: str, request: Any, result: type[BaseModel]) -> Any:
        client, request_id = self._target(label)
        if client is None:
            return types.ErrorData(code=types.INVALID_REQUEST, message="the client has gone")
        try:
            return await client.send_request(
                request, result, metadata=ServerMessageMetadata(related_request_id=request_id)
            )
        except MCPError as exc:
            return exc.error
        except Exception as exc:  # the client went away, or answered what is not a result
            logger.info("/mcp: %s from %r not answered: %s", request.method, label, exc)
            return types.ErrorData(code=types.INTERNAL_ERROR, message="the client did not answer")

    async def _tell(self, label: str, message: Any, *, scoped: bool) -> None:
        client, request_id = self._target(label) if scoped else (self._client, None)
        if client is None:
            return
        try:
            await client.send_notification(message, related_request_id=request_id)
        except Exception as exc:  # the client has gone; its session closes this link
            logger.debug("/mcp: %s from %r not delivered: %s", message.method, label, exc)
