"""What an MCP server or a request controls cannot make the server touch the network or the
disk, nor stall it (issue 14)."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx2
import pytest
from mcp import types

from tests.e2e.servers import remote_mcp
from tests.support.processes import free_port
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.loop.calls import parse_arguments, run_call
from vllm_mcp_ext.loop.toolset import ExposedTool, ServerTools, ToolSet
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.servers.remote.http import GuardedTransport, ResponseTooLarge, http_client
from vllm_mcp_ext.servers.remote.policy import Target
from vllm_mcp_ext.servers.remote.source import RemoteSource
from vllm_mcp_ext.servers.transports import HttpTrace
from vllm_mcp_ext.types.source import ServerUnavailable


@pytest.fixture
def hits() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every path asked of it."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"type": "integer"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _exposed(schema: dict) -> object:
    (exposed,) = ToolSet.build([ServerTools("evil", (types.Tool(name="t", input_schema=schema),))]).tools
    return exposed


@pytest.mark.parametrize("where", ["url", "file", "nested"])
def test_schema_references_never_leave_the_document(
    where: str, hits: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, seen = hits
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "integer"}')
    ref = {"url": f"{base}/latest/meta-data", "file": secret.as_uri(), "nested": f"{base}/x#/a"}[where]
    schema = {"type": "object", "properties": {"a": {"$ref": ref}}}
    if where == "nested":
        schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/b"}}, "$defs": {"b": {"$ref": ref}}}
    outcome = parse_arguments(_exposed(schema), '{"a": 1}')
    assert seen == []
    assert not isinstance(outcome, dict)
    assert outcome.error.code == -32602
    assert "outside the tool's schema" in outcome.model_text


def test_references_inside_the_schema_still_work() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/n"}},
        "$defs": {"n": {"type": "integer"}},
    }
    exposed = _exposed(schema)
    assert parse_arguments(exposed, '{"a": 1}') == {"a": 1}
    bad = parse_arguments(exposed, '{"a": "x"}')
    assert not isinstance(bad, dict) and "Invalid arguments" in bad.model_text


def test_thousands_of_tools_with_one_name_are_named_in_linear_time() -> None:
    def build(count: int) -> tuple[float, list[str]]:
        tools = tuple(types.Tool(name="same", input_schema={"type": "object"}) for _ in range(count))
        start = time.perf_counter()
        toolset = ToolSet.build([ServerTools("a", tools), ServerTools("b", tools[:2])])
        return time.perf_counter() - start, [t.exposed_name for t in toolset.tools]

    small, _ = build(2_000)
    large, names = build(20_000)
    assert len(set(names)) == len(names) == 20_002
    assert all(len(n) <= 64 for n in names)
    # ten times the tools, measured side by side: linear is ~10x, quadratic ~100x (no absolute
    # time: a loaded machine makes any fixed bound flaky)
    assert large < 40 * max(small, 1e-3), (small, large)


# -- a hostile remote MCP server (tests/e2e/servers/remote_mcp.py, hostile modes) ---------------


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    port = free_port()
    with remote_mcp.running_in_thread(port) as url:
        yield url


@pytest.fixture(scope="module")
def settings(hostile: str) -> RemoteSettings:
    port = int(hostile.rsplit(":", 1)[1])
    return RemoteSettings(
        allow=(f"127.0.0.1:{port}",),
        connect_timeout=3,
        list_timeout=3,
        call_timeout=3,
        max_response_bytes=1_000_000,
    )


async def _open(service: RemoteMcp, url: str) -> RemoteSource:
    return service.source("hostile", url, {}, None, None, "tools[0]")


async def test_a_flood_of_tools_fails_the_listing_without_stalling(hostile: str, settings) -> None:
    # the default cap; time enough for this process to also build the 8,000 tools it serves
    service = RemoteMcp(
        replace(settings, max_response_bytes=8 * 1024 * 1024, connect_timeout=20, list_timeout=20)
    )
    try:
        src = await _open(service, f"{hostile}/flood/mcp")
        with pytest.raises(ServerUnavailable) as info:
            await src.current_tools()
        assert "8000 tools; at most 1024" in str(info.value)
        src.release()
    finally:
        await service.close()


async def test_a_schema_reference_to_a_url_is_a_tool_error_and_never_fetched(hostile: str, settings) -> None:
    service = RemoteMcp(settings)
    try:
        src = await _open(service, f"{hostile}/schemaref/mcp")
        tools = await src.current_tools()
        (exposed,) = ToolSet.build([ServerTools("hostile", tuple(t for t in tools if t.name == "add"))]).tools
        outcome = parse_arguments(exposed, '{"a": 2, "b": 3}')
        assert not isinstance(outcome, dict) and "outside the tool's schema" in outcome.model_text
        assert remote_mcp.STATE["canary"] == []
        src.release()
    finally:
        await service.close()


@pytest.mark.parametrize(("mode", "expected"), [("gzip", "1000000-byte limit"), ("drip", "timed out")])
async def test_bombs_and_drips_are_failed_calls_within_the_limits(
    hostile: str, settings, mode: str, expected: str
) -> None:
    service = RemoteMcp(settings)
    try:
        src = await _open(service, f"{hostile}/{mode}/mcp")
        tools = await src.current_tools()
        add = ExposedTool("add", "hostile", next(t for t in tools if t.name == "add"))
        start = time.perf_counter()
        outcome = await run_call(src, add, {"a": 2, "b": 3})
        assert time.perf_counter() - start < settings.call_timeout + 2
        assert outcome.error is not None and expected in outcome.model_text, outcome.model_text
        src.release()
    finally:
        await service.close()


def _guarded(
    handler: Callable[[httpx2.Request], httpx2.Response], limit: int
) -> tuple[httpx2.AsyncClient, HttpTrace]:
    trace = HttpTrace()
    target = Target("https://mcp.test/mcp", "https", "mcp.test", 443, ("127.0.0.1",))
    client = http_client(target, {}, connect_timeout=1, max_response_bytes=limit, trace=trace)
    guarded = client._transport
    assert isinstance(guarded, GuardedTransport)
    guarded._inner = httpx2.MockTransport(handler)  # the network stands in; the guard is real
    return client, trace


def _gzip(size: int) -> bytes:
    return gzip.compress(b"x" * size)


class _Body(httpx2.AsyncByteStream):
    """A body that arrives over time, in 64 KB chunks, as from a socket."""

    def __init__(self, data: bytes):
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self._data), 65536):
            yield self._data[i : i + 65536]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "redirect"])
async def test_every_body_is_capped_after_decoding(method: str, encoding: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if encoding == "gzip":
            return httpx2.Response(200, stream=_Body(_gzip(5_000_000)), headers={"content-encoding": "gzip"})
        status = 307 if encoding == "redirect" else 200
        return httpx2.Response(status, stream=_Body(b"y" * 2_000_000), headers={"location": "/mcp"})

    client, trace = _guarded(handler, 100_000)
    async with client:
        with pytest.raises(ResponseTooLarge):
            await client.request(method, "https://mcp.test/mcp", content=b"{}" if method == "POST" else None)
    assert trace.too_large == 100_000


async def test_compressed_bodies_within_the_cap_are_decoded() -> None:
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["accept-encoding"] == "gzip, deflate"
        return httpx2.Response(
            200, stream=_Body(gzip.compress(payload)), headers={"content-encoding": "gzip"}
        )

    client, _ = _guarded(handler, 100_000)
    async with client:
        response = await client.post("https://mcp.test/mcp", content=b"{}")
    assert response.content == payload


async def test_unknown_content_codings_are_refused() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, stream=_Body(b"\x00" * 10), headers={"content-encoding": "br"})

    client, _ = _guarded(handler, 100_000)
    async with client:
        with pytest.raises(httpx2.DecodingError):
            await client.post("https://mcp.test/mcp", content=b"{}")
