"""``/v1/responses`` over a WebSocket: OpenAI's WebSocket mode of the Responses API.

The client sends ``response.create`` messages (the ``POST /v1/responses`` body plus ``type``,
and optionally ``generate`` and ``stream_id``); the server answers each with the response's
stream events, one JSON message per event, exactly as they would go out as server-sent events.
One response runs at a time per connection: a second ``response.create`` meanwhile gets an
``error`` event. The connection remembers its last finished response's conversation, with the
tokens the engine holds after it: a ``response.create`` whose ``previous_response_id`` names it
continues those tokens without a store read (only what follows them is tokenized). Any other
``previous_response_id`` is read from the store as over HTTP. ``response.steer`` is answered
with ``response.steer.failed`` (``steering_not_supported``). docs/websocket.md has the limits.

The route is a WebSocket route: Starlette matches it only for ``websocket`` scopes, so the HTTP
``POST /v1/responses`` (the plugin's, and vLLM's behind it) is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext import bounded_json
from vllm_mcp_ext.access import Caller
from vllm_mcp_ext.api.door import caller_of, runtime_of
from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.errors import InvalidRequest, McpExtError, TooManyConnections, Unsupported
from vllm_mcp_ext.events.sse import to_json
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.runtime import Runtime

logger = logging.getLogger(__name__)
router = APIRouter()

_ENVELOPE = ("type", "generate", "stream_id", "stream")  # WebSocket-only fields (``stream`` is implied)
_CONTINUABLE = ("completed", "incomplete")  # a response the next one may continue


class ResponseInProgress(InvalidRequest):
    default_code = "conversation_already_has_active_response"


class LifetimeReached(InvalidRequest):
    default_code = "websocket_connection_limit_reached"


@router.websocket("/v1/responses")
async def responses_socket(socket: WebSocket) -> None:
    try:
        plugin = runtime_of(socket)
        caller = caller_of(socket, plugin)  # vLLM's middleware checks /v1 too; the plugin's own check
        limits = plugin.limits
        if plugin.open_sockets >= limits.ws_max_connections:
            raise TooManyConnections(
                f"this server holds {limits.ws_max_connections} WebSocket connections "
                "(VLLM_MCP_WS_MAX_CONNECTIONS); try again later"
            )
    except McpExtError as exc:
        await _refuse(socket, exc)
        return
    plugin.open_sockets += 1
    try:
        await socket.accept()
        await _Connection(socket, plugin, caller).serve(limits.ws_max_lifetime)
    finally:
        plugin.open_sockets -= 1


async def _refuse(socket: WebSocket, exc: McpExtError) -> None:
    """The handshake answered with the HTTP error, where the server can send one; else closed
    with a policy-violation code."""
    if "websocket.http.response" in socket.scope.get("extensions", {}):
        await socket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status))
    else:
        await socket.close(code=1008, reason=exc.message[:120])


class _Connection:
    """One client's connection: its messages, its one response in flight, its memory."""

    def __init__(self, socket: WebSocket, plugin: Runtime, caller: Caller):
        self.socket = socket
        self.service = plugin.service
        self.plugin = plugin
        self.caller = caller
        self.running: asyncio.Task[None] | None = None
        # the last finished response: its id and conversation, with the engine's held tokens
        self.memory: tuple[str, ParsableContext] | None = None

    async def serve(self, lifetime: float) -> None:
        """Messages until the client goes or the lifetime ends; a response still running when
        the client goes is cancelled (its engine requests and MCP calls with it)."""
        try:
            async with asyncio.timeout(lifetime):
                while (text := await self._receive()) is not None:
                    await self._on_message(text)
        except TimeoutError:
            await self._close_at_end_of_life(lifetime)
        finally:
            await self._cancel_running()

    async def _receive(self) -> str | None:
        message = await self.socket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"").decode("utf-8", "replace")

    async def _on_message(self, text: str) -> None:
        stream_id = None
        try:
            body = _parse(text, self.plugin.limits.max_request_bytes)
            stream_id = body.get("stream_id") if isinstance(body.get("stream_id"), str) else None
            kind = body.get("type")
            if kind == "response.create":
                self._create(body, stream_id)
            elif kind == "response.steer":
                await self._send(_steer_failed(body))
            else:
                raise InvalidRequest(f"unknown client event type {kind!r}", param="type")
        except McpExtError as exc:
            await self._send(_error(exc, stream_id))

    def _create(self, body: dict[str, Any], stream_id: str | None) -> None:
        if self.running is not None and not self.running.done():
            raise ResponseInProgress(
                "a response is already in progress on this connection; send the next "
                "response.create after its terminal event",
                param="type",
            )
        self.running = asyncio.create_task(self._respond(body, stream_id))

    async def _respond(self, body: dict[str, Any], stream_id: str | None) -> None:
        try:
            run = await self._prepare(body)
        except McpExtError as exc:
            await self._send(_error(exc, stream_id))
            return
        except Exception:
            logger.exception("a WebSocket response.create failed")
            await self._send(
                _error(McpExtError("The server had an error while processing your request."), stream_id)
            )
            return
        try:
            async with contextlib.aclosing(self.service.stream(run)) as events:
                async for event in events:
                    await self._send(_event_json(event, stream_id))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away: `serve` sees it too
        final = run.stream.final
        if final is not None and final.status in _CONTINUABLE:
            self.memory = (run.id, _kept(run.context))

    async def _prepare(self, body: dict[str, Any]) -> Run:
        generate = body.get("generate", True)
        if not isinstance(generate, bool):
            raise InvalidRequest("'generate' must be a boolean", param="generate")
        if body.get("background"):
            raise Unsupported("'background' is not supported over WebSocket", param="background")
        body = {k: v for k, v in body.items() if k not in _ENVELOPE}
        fresh = {k: v for k, v in body.items() if k != "previous_response_id"}
        own = frozenset(self.plugin.registry.labels)
        route = choose_route(fresh, harmony=self.plugin.harmony, previous_is_ours=False, own_labels=own)
        if route.handler == "stock":
            raise Unsupported(f"not served over WebSocket ({route.reason}); use POST /v1/responses")
        held = self._remembered(body.get("previous_response_id"))
        run = await self.service.prepare(body, self.caller, held=held)
        run.generate = generate
        return run

    def _remembered(self, previous: Any) -> ParsableContext | None:
        """The remembered conversation, when ``previous`` names it; it goes to the new response
        (which extends it), so the memory is empty until that one ends."""
        if self.memory is None or previous != self.memory[0]:
            return None
        context = self.memory[1]
        self.memory = None
        return context

    async def _send(self, text: str) -> None:
        await self.socket.send_text(text)

    async def _cancel_running(self) -> None:
        if self.running is not None and not self.running.done():
            logger.info("WebSocket client went away mid-response; cancelling it")
            self.running.cancel()
            await asyncio.wait({self.running})

    async def _close_at_end_of_life(self, lifetime: float) -> None:
        """The response in flight ends first; then the client is told why, and the socket closes."""
        if self.running is not None:
            await asyncio.wait({self.running})
        error = LifetimeReached(
            f"the connection reached its lifetime of {lifetime:g} s (VLLM_MCP_WS_MAX_LIFETIME); "
            "open a new one and continue with previous_response_id"
        )
        with contextlib.suppress(Exception):  # the client may be gone already
            await self._send(_error(error, None))
            await self.socket.close(code=1000)


def _parse(text: str, cap: int) -> dict[str, Any]:
    if len(text) > cap:
        raise InvalidRequest(f"the message is larger than {cap} bytes (VLLM_MCP_MAX_REQUEST_BYTES)")
    try:
        body = bounded_json.loads_bounded(text)
    except bounded_json.TooDeep as exc:
        raise InvalidRequest(f"the message is {exc}") from None
    except json.JSONDecodeError:
        raise InvalidRequest("the message is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the message must be a JSON object")
    return body


def _kept(context: ParsableContext) -> ParsableContext:
    """What the store would keep of a finished conversation, plus the engine's held tokens."""
    kept = ParsableContext.from_json(context.to_json())
    kept.held = context.held
    return kept


def _event_json(event: ResponseStreamEvent, stream_id: str | None) -> str:
    text = to_json(event)
    return text if stream_id is None else f'{text[:-1]},"stream_id":{json.dumps(stream_id)}}}'


def _error(exc: McpExtError, stream_id: str | None) -> str:
    """OpenAI's WebSocket ``error`` event (``ResponseWsError``)."""
    event: dict[str, Any] = {"type": "error", "status": exc.status, **exc.body()}
    if stream_id is not None:
        event["stream_id"] = stream_id
    return json.dumps(event)


def _steer_failed(body: dict[str, Any]) -> str:
    """``response.steer.failed``: this server does not steer responses."""
    return json.dumps(
        {
            "type": "response.steer.failed",
            "sequence_number": 0,
            "error": {
                "code": "steering_not_supported",
                "message": "this server does not support steering; send the input with the next "
                "response.create",
                "type": "invalid_request_error",
            },
            "steer": {"input": body.get("input"), "previous_response_id": body.get("previous_response_id")},
        }
    )
