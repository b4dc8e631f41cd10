"""Streamed responses: each event is written as soon as it is made, byte for byte as stock streams
them, a client that stops reading holds back the work, and one that goes away cancels it."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import StreamingResponse

from tests.support.asgi import loopback
from vllm_mcp_ext.api.disconnect import event_stream


def _request(gone: asyncio.Event | None = None) -> Request:
    return Request({"type": "http", "method": "POST", "headers": []}, _receive(gone))


def _receive(gone: asyncio.Event | None) -> Callable[[], Awaitable[dict[str, object]]]:
    async def receive() -> dict[str, object]:
        if gone is None:
            await asyncio.Event().wait()  # the client stays
        else:
            await gone.wait()
        return {"type": "http.disconnect"}

    return receive


class _Client:
    """The ASGI ``send`` side: what the server wrote, in order; ``stall`` makes a write wait."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.ended = False
        self.stall: asyncio.Event | None = None

    async def send(self, message: dict[str, object]) -> None:
        if message["type"] != "http.response.body":
            return
        self.bodies.append(message["body"])  # type: ignore[arg-type]
        self.ended = not message.get("more_body", False)
        if self.stall is not None:
            await self.stall.wait()


async def _serve(chunks: AsyncIterator[str], client: _Client, gone: asyncio.Event | None = None) -> None:
    request = _request(gone)
    await event_stream(request, chunks)(request.scope, _receive(gone), client.send)  # type: ignore[arg-type]


async def test_each_chunk_is_written_as_it_is_made_and_the_stream_ends() -> None:
    written_before_next: list[bool] = []
    client = _Client()

    async def chunks() -> AsyncIterator[str]:
        for event in ("event: a\n\n", "event: b\n\n", "event: c\n\n"):
            yield event
            written_before_next.append(client.bodies[-1] == event.encode())

    async with asyncio.timeout(5):
        await _serve(chunks(), client)
    assert written_before_next == [True, True, True]
    assert client.bodies == [b"event: a\n\n", b"event: b\n\n", b"event: c\n\n", b""] and client.ended


async def test_an_error_comes_after_the_chunks_before_it() -> None:
    async def chunks() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        raise RuntimeError("engine died")

    client = _Client()
    with pytest.raises(RuntimeError, match="engine died"):
        await _serve(chunks(), client)
    assert client.bodies == [b"a", b"b"] and not client.ended


async def test_a_client_that_goes_away_cancels_the_work() -> None:
    gone, cancelled = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "a"
        gone.set()
        try:
            await asyncio.Event().wait()  # a long MCP call
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield "never"

    client = _Client()
    async with asyncio.timeout(5):
        await _serve(chunks(), client, gone)
    assert client.bodies == [b"a"] and cancelled.is_set() and not client.ended


async def test_a_server_that_cancels_the_stream_cancels_the_work() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncIterator[str]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield "never"

    serving = asyncio.create_task(_serve(chunks(), _Client()))
    async with asyncio.timeout(5):
        await started.wait()
        serving.cancel()
        await asyncio.wait({serving})
    assert serving.cancelled() and cancelled.is_set()


async def test_a_client_that_stops_reading_holds_back_the_work() -> None:
    """While the client takes nothing, the work makes no more than the event being written; once
    it reads again the stream goes on to its end, every event once, in order."""
    made = 0

    async def chunks() -> AsyncIterator[str]:
        nonlocal made
        for i in range(1000):  # an engine far faster than its client
            made += 1
            yield f"{i},"

    client = _Client()
    client.stall = asyncio.Event()
    serving = asyncio.create_task(_serve(chunks(), client))
    async with asyncio.timeout(5):
        while not client.bodies:
            await asyncio.sleep(0)
        for _ in range(100):  # the work runs as far as it may
            await asyncio.sleep(0)
        assert made == 1  # the event in the stalled write
        client.stall.set()
        await serving
    body = b"".join(client.bodies).decode()
    assert body.split(",")[:-1] == [str(i) for i in range(1000)] and client.ended


async def test_the_bytes_on_the_wire_are_the_chunks_as_stock_streams_them() -> None:
    """Over a real loopback socket, a scripted response's events (one engine output's several
    events made together, unicode, an event larger than a socket write) come out byte for byte
    as Starlette's StreamingResponse (what stock vLLM and, before, the plugin wrapped) sends them."""
    script = [
        'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n',
        'event: response.output_item.added\ndata: {"sequence_number":1}\n\n',
        'event: response.content_part.added\ndata: {"sequence_number":2}\n\n',
        *(f'event: response.output_text.delta\ndata: {{"delta":"{w}","sequence_number":{i}}}\n\n'
          for i, w in enumerate(["Hé", "llo", " wörld", " \\u2603", "x" * 200_000], start=3)),
        'event: response.completed\ndata: {"sequence_number":8}\n\n',
    ]  # fmt: skip

    async def chunks() -> AsyncIterator[str]:
        for i, event in enumerate(script):
            if i in (3, 5, 7):
                await asyncio.sleep(0.01)  # the next engine output
            yield event

    app = FastAPI()

    @app.get("/ours")
    async def ours(request: Request) -> StreamingResponse:
        return event_stream(request, chunks())

    @app.get("/stock")
    async def stock() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/event-stream")

    async with loopback(app) as url, httpx.AsyncClient(base_url=url) as http:
        bodies = {}
        for path in ("/ours", "/stock"):
            async with http.stream("GET", path) as response:
                assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
                bodies[path] = b"".join([chunk async for chunk in response.aiter_raw()])
    assert bodies["/ours"] == bodies["/stock"] == "".join(script).encode()


EVENT = 32 * 1024  # bytes of one event: a large delta, or an item carrying a tool's output
CLIENT_BUFFER = 64 * 1024  # the stalled client's socket receive buffer (fixed: no autotuning)


async def test_a_stalled_socket_client_makes_the_server_hold_a_bounded_number_of_events() -> None:
    """A real HTTP client over a loopback socket reads the headers, then nothing: the events made
    for it but not received stay within the one being written and what the two sockets can buffer
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
        return event_stream(request, chunks())

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
            assert made - _events(received) <= 1 + sockets // EVENT + 1, made
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
