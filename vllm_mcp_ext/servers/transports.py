"""How each transport opens its read/write streams, with the `mcp` SDK's clients; nothing else.

A `Transport` is a kind, a way to open the streams, and (for HTTP transports whose client records
them) the HTTP statuses its exchanges got: the session reports those as ``http_error`` and uses
them to fall back from streamable HTTP to SSE. Which names a user may write for a transport is
`config.tool_servers.TRANSPORT_ALIASES`, the one alias map.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import McpHttpClientFactory, create_mcp_http_client

from vllm_mcp_ext.config import ServerSpec, StdioServerSpec
from vllm_mcp_ext.config.tool_servers import TransportKind
from vllm_mcp_ext.servers.stdio import OutputCaps, bounded_stdio_client

Opener = Callable[[], AbstractAsyncContextManager[TransportStreams]]


@dataclass
class HttpTrace:
    """What one transport's HTTP exchanges went wrong with, by JSON-RPC method."""

    error_status: dict[str, int] = field(default_factory=dict)  # method -> last status >= 300
    redirects: dict[str, str] = field(default_factory=dict)  # method -> Location not followed
    too_large: int | None = None  # the byte limit a response went past

    def status(self, method: str) -> int | None:
        return self.error_status.get(method)


@dataclass(frozen=True)
class Transport:
    kind: TransportKind
    open: Opener
    trace: HttpTrace | None = None


def stdio(spec: StdioServerSpec, caps: OutputCaps | None = None) -> Transport:
    """A server we start: what it writes is bounded (servers/stdio.py)."""
    params = StdioServerParameters(
        command=spec.command, args=list(spec.args), env=spec.env or None, cwd=spec.cwd
    )
    trace = HttpTrace()

    def too_large(limit: int) -> None:
        trace.too_large = limit

    return Transport(
        "stdio", lambda: bounded_stdio_client(params, spec.label, caps or OutputCaps(), too_large), trace
    )


def sse(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    client: McpHttpClientFactory = create_mcp_http_client,
    trace: HttpTrace | None = None,
    auth: httpx2.Auth | None = None,
) -> Transport:
    return Transport(
        "sse", lambda: sse_client(url, headers=headers, httpx_client_factory=client, auth=auth), trace
    )


def streamable_http(
    url: str,
    client: Callable[[], httpx2.AsyncClient],
    *,
    max_event_size: int | None = None,
    trace: HttpTrace | None = None,
) -> Transport:
    options: dict[str, Any] = {} if max_event_size is None else {"max_sse_event_size": max_event_size}

    @asynccontextmanager
    async def open_streams() -> AsyncIterator[TransportStreams]:
        async with client() as http, streamable_http_client(url, http_client=http, **options) as streams:
            yield streams

    return Transport("streamable_http", open_streams, trace)


def configured(
    spec: ServerSpec, auth: httpx2.Auth | None = None, caps: OutputCaps | None = None
) -> Transport:
    """The transport of a ``--tool-server`` entry; ``auth`` signs its requests (the server's
    OAuth provider, `servers.oauth`); ``caps`` bound what a stdio server writes."""
    if isinstance(spec, StdioServerSpec):
        return stdio(spec, caps)
    headers = spec.headers or None
    if spec.transport == "sse":
        return sse(spec.url, headers=headers, auth=auth)
    return streamable_http(spec.url, lambda: create_mcp_http_client(headers=headers, auth=auth))
