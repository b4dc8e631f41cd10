"""Per-call latency of an MCP tools/call: the plugin's pooled session against a fresh session
per call (connect, initialize, call, close), over stdio and streamable HTTP."""

from __future__ import annotations

import time
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from benchmarks.common import percentile, table
from benchmarks.context import Context
from vllm_mcp_ext.config import HttpServerSpec, StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import ServerConnection

ARGS = {"a": 1, "b": 2}


async def run(ctx: Context) -> dict[str, Any]:
    command, *args = ctx.stack.stdio_command
    specs = {
        "stdio": StdioServerSpec(label="bench", command=command, args=tuple(args)),
        "streamable-http": HttpServerSpec(label="bench", url=ctx.stack.mcp_url, transport="streamable_http"),
    }
    data: dict[str, Any] = {}
    rows = []
    for transport, spec in specs.items():
        pooled = await _pooled(spec, ctx.mode.mcp_calls)
        fresh = await _fresh(transport, ctx, max(ctx.mode.mcp_calls // 5, 2))
        data[transport] = {"pooled": pooled, "fresh": fresh}
        rows.append(
            [transport, pooled["p50_ms"], pooled["p95_ms"], fresh["p50_ms"], fresh["p95_ms"],
             fresh["p50_ms"] / pooled["p50_ms"]]
        )  # fmt: skip
    table(
        "mcp_call: tools/call latency, pooled session vs a fresh session per call",
        ["transport", "pooled p50 ms", "pooled p95 ms", "fresh p50 ms", "fresh p95 ms", "fresh/pooled p50"],
        rows,
    )
    return data


async def _pooled(spec: Any, calls: int) -> dict[str, Any]:
    conn = ServerConnection(spec, Settings())
    conn.start()
    try:
        await conn.wait_first_attempt()
        await conn.call_tool("add", ARGS)  # warm
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            await conn.call_tool("add", ARGS)
            times.append(time.perf_counter() - start)
    finally:
        await conn.stop()
    return _ms(times)


async def _fresh(transport: str, ctx: Context, calls: int) -> dict[str, Any]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        if transport == "stdio":
            command, *args = ctx.stack.stdio_command
            async with (
                stdio_client(StdioServerParameters(command=command, args=args)) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                await session.call_tool("add", ARGS)
        else:
            async with (
                create_mcp_http_client() as http,
                streamable_http_client(ctx.stack.mcp_url, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                await session.call_tool("add", ARGS)
        times.append(time.perf_counter() - start)
    return _ms(times)


def _ms(times: list[float]) -> dict[str, Any]:
    return {"n": len(times), "p50_ms": percentile(times, 50) * 1e3, "p95_ms": percentile(times, 95) * 1e3}
