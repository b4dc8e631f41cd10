"""Streamed responses: chunks that are ready together go out as one write, none is held back
waiting for the next, and a client that goes away cancels the work behind the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request

from vllm_mcp_ext.api.disconnect import while_connected


def _request(gone: asyncio.Event | None = None) -> Request:
    async def receive() -> dict[str, object]:
        if gone is None:
            await asyncio.Event().wait()  # the client stays
        else:
            await gone.wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


async def test_chunks_ready_together_are_written_as_one() -> None:
    async def chunks() -> AsyncIterator[str]:
        for event in ("event: a\n\n", "event: b\n\n", "event: c\n\n"):
            yield event  # one engine output's events, made without a pause

    written = [chunk async for chunk in while_connected(_request(), chunks())]
    assert written == ["event: a\n\nevent: b\n\nevent: c\n\n"]


async def test_a_chunk_is_not_held_back_for_the_next() -> None:
    first_seen = asyncio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "a"
        await first_seen.wait()  # the next token comes only after the client has the first
        yield "b"

    written = []
    async with asyncio.timeout(5):
        async for chunk in while_connected(_request(), chunks()):
            written.append(chunk)
            first_seen.set()
    assert written == ["a", "b"]


async def test_an_error_comes_after_the_chunks_before_it() -> None:
    async def chunks() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        raise RuntimeError("engine died")

    written = []
    with pytest.raises(RuntimeError, match="engine died"):
        async for chunk in while_connected(_request(), chunks()):
            written.append(chunk)
    assert "".join(written) == "ab"


async def test_a_client_that_goes_away_cancels_the_work() -> None:
    gone, cancelled = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "a"
        try:
            await asyncio.Event().wait()  # a long MCP call
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield "never"

    written = []
    async with asyncio.timeout(5):
        async for chunk in while_connected(_request(gone), chunks()):
            written.append(chunk)
            gone.set()
    assert written == ["a"] and cancelled.is_set()
