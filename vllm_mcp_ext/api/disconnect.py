"""Cancel a response's work when its client goes away.

Neither a plain JSON response nor (with ASGI spec 2.4 servers such as uvicorn) a streamed one is
cancelled by Starlette while nothing is being sent: a long MCP call would run to its end for
nobody. Both race the work against the ASGI ``http.disconnect`` message. The request body must
have been read.

A slow reader gets back-pressure: a stream's work waits while the HTTP server's write buffer is
full (`EventStream`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")
logger = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client disconnected before the response was ready."""


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result; if the client disconnects first, `work` is cancelled (its MCP calls get
    ``notifications/cancelled``, its engine requests are aborted) and `ClientGone` is raised."""
    task = asyncio.create_task(work)
    listener = asyncio.create_task(_disconnected(request))
    try:
        await asyncio.wait({task, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        listener.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled():
        raise ClientGone()
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class EventStream(StreamingResponse, Generic[T]):
    """Server-sent event chunks as every door streams them, written by the one task that makes
    them (the response's work), each as soon as it is made: no hand-over to another task per
    event. The HTTP server's transport writes what one turn of the event loop sent in one go
    (uvloop, as vLLM runs it, makes one socket write of the events of one engine output).

    Back-pressure is the ASGI server's: ``send`` waits while its write buffer is full (uvicorn:
    64 KiB), so a client that reads slower than the events are made, or stops reading, holds back
    the work; the event in that ``send`` is the only one held here.

    A client that disconnects cancels the work. The work runs in a task of ours, cancelled
    plainly: both when we see the disconnect and when the server cancels the stream itself
    (through an anyio scope, which would not reach the tasks the work started)."""

    def __init__(self, request: Request, events: AsyncIterator[T], encode: Callable[[T], str]) -> None:
        super().__init__(events, media_type="text/event-stream")  # type: ignore[arg-type]  # ours encodes
        self._request = request
        self._encode = encode  # here rather than in a generator of its own: one hop less per event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        writer = asyncio.create_task(self._write(send))
        listener = asyncio.create_task(_disconnected(self._request))
        try:
            await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listener.cancel()
            if not writer.done():
                writer.cancel()
                await asyncio.wait({writer})
        if writer.cancelled():
            logger.info("client went away mid-stream; cancelled its response")
            return
        writer.result()  # the work's error, after the events before it
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send) -> None:
        encode, charset = self._encode, self.charset
        async for event in self.body_iterator:
            body = encode(event).encode(charset)  # type: ignore[arg-type]
            await send({"type": "http.response.body", "body": body, "more_body": True})


def _as_is(chunk: str) -> str:
    return chunk


def event_stream(
    request: Request, events: AsyncIterator[Any], encode: Callable[[Any], str] = _as_is
) -> StreamingResponse:
    """Server-sent events as every door streams them, each ``encode``d (by default, the chunks
    are the encoded events) and written as soon as it is made, back-pressure from the HTTP
    server's write buffer, the work cancelled when the client goes away (`EventStream`)."""
    return EventStream(request, events, encode)
