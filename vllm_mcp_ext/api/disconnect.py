"""Cancel a non-streaming response's work when its client goes away.

A streamed response is cancelled by Starlette when the client disconnects; a plain JSON response
is not, so a long loop (model turns, remote MCP calls) would run to its end for nobody. This races
the work against the ASGI ``http.disconnect`` message. The request body must have been read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")


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
