"""Streamed responses: chunks that are ready together go out as one write, none is held back
waiting for the next, and a client that goes away cancels the work behind the stream."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import StreamingResponse

from tests.support.asgi import loopback
from vllm_mcp_ext.api.disconnect import event_stream, while_connected


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


async def test_a_client_that_stops_reading_holds_back_the_work() -> None:
    """While the client takes nothing, at most ``max_queued`` events wait for it and the work
    makes no more; once it reads again the stream goes on to its end, every event once, in order."""
    made = 0

    async def chunks() -> AsyncIterator[str]:
        nonlocal made
        for i in range(1000):  # an engine far faster than its client
            made += 1
            yield f"{i},"

    stream = while_connected(_request(), chunks(), max_queued=8)
    first = await anext(stream)  # one write reaches the client; then it stalls
    for _ in range(100):  # the work runs as far as it may
        await asyncio.sleep(0)
    assert made <= 8 + 1  # the queued events, and the one the work holds while it waits
    rest = [chunk async for chunk in stream]
    assert (first + "".join(rest)).split(",")[:-1] == [str(i) for i in range(1000)]


EVENT = 32 * 1024  # bytes of one event: a large delta, or an item carrying a tool's output
CLIENT_BUFFER = 64 * 1024  # the stalled client's socket receive buffer (fixed: no autotuning)


async def test_a_stalled_socket_client_makes_the_server_hold_a_bounded_number_of_events() -> None:
    """A real HTTP client over a loopback socket reads the headers, then nothing: the events made
    for it but not received stay within the queue bound and what the two sockets can buffer
    (the work is held back, not buffered), and when it reads again it gets every event and the
    end of the stream."""
    total, made = 400, 0  # 12.5 MiB of events: far more than the sockets hold

    async def chunks() -> AsyncIterator[str]:
        nonlocal made
        for i in range(total):
            made += 1
            yield f"data: {i} {'x' * EVENT}\n\n"

    app = FastAPI()

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        return event_stream(request, chunks(), max_queued=4)

    loop = asyncio.get_running_loop()
    async with loopback(app) as url:
        host, port = url.removeprefix("http://").split(":")
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_BUFFER)
        client.setblocking(False)
        with client:
            await loop.sock_connect(client, (host, int(port)))
            await loop.sock_sendall(client, b"GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            while b"\r\n\r\n" not in received:
                received += await asyncio.wait_for(loop.sock_recv(client, 65536), 10)
            await _settled(lambda: made)  # the client reads no more; the server does what it will
            sockets = _kernel_send_buffer_max() + 2 * CLIENT_BUFFER + 2 * 65536  # + the transport's
            assert made - _events(received) <= 4 + 1 + sockets // EVENT + 1, made
            assert made < total
            while chunk := await asyncio.wait_for(loop.sock_recv(client, 1 << 20), 10):
                received += chunk
    assert _indices(received) == list(range(total))
    assert received.endswith(b"\r\n0\r\n\r\n")  # the chunked body's end: the stream ended


async def _settled(count: Callable[[], int]) -> None:
    """Wait until ``count()`` stops moving (three quiet tenths of a second), at most 30 s."""
    async with asyncio.timeout(30):
        last, quiet = -1, 0
        while quiet < 3:
            await asyncio.sleep(0.1)
            now = count()
            quiet = quiet + 1 if now == last else 0
            last = now


def _kernel_send_buffer_max() -> int:
    """The most a loopback TCP socket's send buffer grows to (tcp_wmem's maximum)."""
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def _indices(body: bytes) -> list[int]:
    return [int(i) for i in re.findall(rb"data: (\d+) ", body)]


def _events(body: bytes) -> int:
    return len(_indices(body))
