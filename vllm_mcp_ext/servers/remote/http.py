"""The HTTP client a remote MCP session uses: it can only reach the addresses the URL policy
checked, bounds what a server may send, and remembers the HTTP statuses it saw so failures can be
reported as ``http_error``. `remote_transports` gives a session the transports to try over it.

* `PinnedBackend` replaces DNS: ``connect_tcp(host)`` goes to the addresses admitted for that
  host, and refuses any other host. TLS still verifies the certificate against the host name and
  sends it as SNI; the ``Host`` header is the URL's. Proxies from the environment are ignored.
* `GuardedTransport` caps every response body (any method, redirects included) after decoding:
  it decodes ``gzip``/``deflate`` itself, in bounded steps, so a compressed bomb stops at the cap;
  any other content coding is refused. It records error statuses and redirects.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpcore2
import httpx2

from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.tool_servers import TransportKind
from vllm_mcp_ext.servers import transports
from vllm_mcp_ext.servers.remote.policy import Target
from vllm_mcp_ext.servers.transports import HttpTrace, Transport


class ResponseTooLarge(httpx2.StreamError):
    """A response body went past the operator's limit; the SDK resolves the call with an error."""


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, pins: Mapping[str, tuple[str, ...]]):
        self._pins = {host.lower().rstrip("."): addresses for host, addresses in pins.items()}
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = self._pins.get(host.lower().strip("[]").rstrip("."))
        if not addresses:
            raise httpcore2.ConnectError(f"{host} was not checked by the URL policy")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not used for remote MCP servers")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


ACCEPTED_ENCODINGS = "gzip, deflate"  # what we ask for; decoded here, under the cap


class _CappedStream(httpx2.AsyncByteStream):
    """The body as decoded bytes, at most ``limit`` of them. ``coding`` is the response's
    ``Content-Encoding`` ("" for none); the decompressor never produces more than the cap allows."""

    def __init__(self, inner: httpx2.AsyncByteStream, limit: int, trace: HttpTrace, coding: str = ""):
        self._inner = inner
        self._limit = limit
        self._trace = trace
        self._coding = coding

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        decoder = _decompressor(self._coding)
        async for chunk in self._inner:
            parts = [chunk] if decoder is None else _decoded(decoder, chunk, self._limit - seen + 1)
            for part in parts:
                seen += len(part)
                if seen > self._limit:
                    self._too_large()
                if part:
                    yield part
        if decoder is not None:
            tail = decoder.flush()
            if seen + len(tail) > self._limit:
                self._too_large()
            if tail:
                yield tail

    def _too_large(self) -> None:
        self._trace.too_large = self._limit
        raise ResponseTooLarge(f"the MCP server's response is larger than {self._limit} bytes")

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, target: Target, max_response_bytes: int, trace: HttpTrace):
        self.trace = trace
        self._limit = max_response_bytes
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)
        # Same TLS settings as httpx2's default transport, but DNS goes through the pins.
        self._inner._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=PinnedBackend({target.host: target.addresses}),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        method = _jsonrpc_method(request)
        if response.status_code >= 300:
            self.trace.error_status[method] = response.status_code
            location = response.headers.get("location")
            if location and 300 <= response.status_code < 400:
                self.trace.redirects[method] = str(request.url.join(location))
        if isinstance(response.stream, httpx2.AsyncByteStream):
            coding = response.headers.get("content-encoding", "").strip().lower()
            if coding not in ("", "identity", "gzip", "x-gzip", "deflate"):
                await response.aclose()
                raise httpx2.DecodingError(f"the MCP server's response uses content coding {coding!r}")
            # We decode (bounded); httpx must not decode again or trust the compressed length.
            for name in ("content-encoding", "content-length") if coding else ():
                if name in response.headers:
                    del response.headers[name]
            response.stream = _CappedStream(response.stream, self._limit, self.trace, coding)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(
    target: Target,
    headers: Mapping[str, str],
    *,
    connect_timeout: float,
    max_response_bytes: int,
    trace: HttpTrace,
) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` for one remote session (what the SDK transports are given)."""
    return httpx2.AsyncClient(
        headers={**headers, "Accept-Encoding": ACCEPTED_ENCODINGS},
        # Reads stay long: an SSE stream may be quiet for a while; calls have their own deadline.
        timeout=httpx2.Timeout(connect_timeout, read=300.0),
        transport=GuardedTransport(target, max_response_bytes, trace),
        follow_redirects=False,
        trust_env=False,
    )


def remote_transports(
    target: Target, headers: Mapping[str, str], hint: TransportKind | None, settings: RemoteSettings
) -> list[Transport]:
    """What a remote session tries, in order: the hinted transport, else streamable HTTP, then
    SSE. Each has its own trace (a fallback starts clean) and its own pinned, guarded client."""
    kinds: list[TransportKind] = [hint] if hint is not None else ["streamable_http", "sse"]
    return [_transport(kind, target, headers, settings) for kind in kinds]


def _transport(
    kind: TransportKind, target: Target, sent: Mapping[str, str], settings: RemoteSettings
) -> Transport:
    trace = HttpTrace()

    def client(
        headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: Any = None
    ) -> httpx2.AsyncClient:  # the SDK's arguments are ignored: ours are fixed per request
        return http_client(
            target,
            sent,
            connect_timeout=settings.connect_timeout,
            max_response_bytes=settings.max_response_bytes,
            trace=trace,
        )

    if kind == "sse":
        return transports.sse(target.url, client=client, trace=trace)
    return transports.streamable_http(
        target.url, client, max_event_size=settings.max_response_bytes, trace=trace
    )


def _decompressor(coding: str) -> Any:
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj()
    return None


def _decoded(decoder: Any, data: bytes, room: int) -> list[bytes]:
    """What ``data`` decodes to, stopping once more than ``room`` bytes came out."""
    parts: list[bytes] = []
    produced = 0
    try:
        while data and produced <= room:
            part = decoder.decompress(data, max(1, room - produced + 1))
            parts.append(part)
            produced += len(part)
            data = decoder.unconsumed_tail
    except zlib.error as exc:
        raise httpx2.DecodingError(f"the MCP server's compressed response is corrupt: {exc}") from None
    return parts


def _jsonrpc_method(request: httpx2.Request) -> str:
    """The JSON-RPC method a POST carries ("GET"/"DELETE" for the transport's own requests)."""
    if request.method != "POST":
        return request.method
    try:
        body = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return "POST"
    method = body.get("method") if isinstance(body, dict) else None
    return method if isinstance(method, str) else "response"
