"""Cancel a response's work when its client goes away.

Neither a plain JSON response nor (with ASGI spec 2.4 servers such as uvicorn) a streamed one is
cancelled by Starlette while nothing is being sent: a long MCP call would run to its end for
nobody. Both race the work against the ASGI ``http.disconnect`` message. The request body must
have been read.

A slow reader gets back-pressure: a stream holds at most `MAX_QUEUED_EVENTS` events waiting for
its client, then its work waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse

T = TypeVar("T")
logger = logging.getLogger(__name__)
# Server-sent events of one response held for a client that reads slower than they are made;
# past it the response's work waits for the client (docs/security.md).
MAX_QUEUED_EVENTS = 64


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


async def while_connected(
    request: Request, chunks: AsyncIterator[str], max_queued: int = MAX_QUEUED_EVENTS
) -> AsyncIterator[str]:
    """``chunks`` until they end or the client disconnects, which cancels the work behind them.
    Chunks that are ready together go out as one (one socket write for the events of one engine
    output, or for those a slow client let pile up).

    At most ``max_queued`` chunks are held for a client that reads slower than they are made
    (waiting, or in the write in flight): then the work waits (back-pressure) until the client
    takes some, however long it stalls. What the socket buffers is the kernel's.

    The chunks are produced by one task of ours, cancelled plainly: both when we see the
    disconnect and when the server cancels the stream itself (through an anyio scope, which
    would not reach the tasks the work started)."""
    # Chunks take a slot each; the one closing entry (end or error) needs none, so the producer
    # never blocks on it, even cancelled while the queue is full.
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    slots = asyncio.Semaphore(max_queued)

    async def produce() -> None:
        try:
            async for chunk in chunks:
                await slots.acquire()
                queue.put_nowait(("chunk", chunk))
        except BaseException as exc:  # handed to the consumer; this task is ours alone
            queue.put_nowait(("error", exc))
            return
        queue.put_nowait(("end", None))

    async def watch() -> None:
        await _disconnected(request)
        logger.info("client went away mid-stream; cancelling its response")
        producer.cancel()

    producer = asyncio.create_task(produce())
    listener = asyncio.create_task(watch())
    try:
        while True:
            ready: list[str] = []
            kind, value = await queue.get()
            while kind == "chunk":
                ready.append(value)
                if queue.empty():
                    break
                kind, value = queue.get_nowait()
            if ready:
                yield "".join(ready)  # returns once written: the client took them
                for _ in ready:
                    slots.release()
            if kind == "end":
                return
            if kind == "error":
                if isinstance(value, asyncio.CancelledError):
                    return  # the disconnect above
                raise value
    finally:
        listener.cancel()
        if not producer.done():
            producer.cancel()
            await asyncio.wait({producer})


def event_stream(
    request: Request, chunks: AsyncIterator[str], max_queued: int = MAX_QUEUED_EVENTS
) -> StreamingResponse:
    """Server-sent event chunks as every door streams them: written while the client is there,
    ready ones together, at most ``max_queued`` held for a slow client, its work cancelled when
    it goes away."""
    return StreamingResponse(while_connected(request, chunks, max_queued), media_type="text/event-stream")
