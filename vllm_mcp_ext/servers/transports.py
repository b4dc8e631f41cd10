"""Open the read/write streams of one server over its transport, with the `mcp` SDK's clients."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from vllm_mcp_ext.config import HttpServerSpec, ServerSpec, StdioServerSpec


@asynccontextmanager
async def open_streams(spec: ServerSpec) -> AsyncIterator[TransportStreams]:
    if isinstance(spec, StdioServerSpec):
        params = StdioServerParameters(
            command=spec.command, args=list(spec.args), env=spec.env or None, cwd=spec.cwd
        )
        async with stdio_client(params, errlog=sys.stderr) as streams:
            yield streams
    elif spec.transport == "sse":
        async with sse_client(spec.url, headers=spec.headers or None) as streams:
            yield streams
    else:
        yield_from = _streamable_http(spec)
        async with yield_from as streams:
            yield streams


@asynccontextmanager
async def _streamable_http(spec: HttpServerSpec) -> AsyncIterator[TransportStreams]:
    async with (
        create_mcp_http_client(headers=spec.headers or None) as http_client,
        streamable_http_client(spec.url, http_client=http_client) as streams,
    ):
        yield streams
