"""64 MCP requests at once against the real server (issue 14): mixed streaming and not,
approvals, remote and configured servers, one server failing. Every request answers without an
error, every response is stored, and the API server's open files, threads and memory do not
grow (measured on its process with psutil). The figures are printed for the closing note."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import psutil
import pytest

from tests.e2e.test_remote_mcp import remote

pytestmark = pytest.mark.e2e
REQUESTS = 64


def server_process(base_url: str) -> psutil.Process:
    """The API server: the process listening on the base URL's port."""
    port = int(base_url.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise AssertionError(f"nothing listens on port {port}")


def figures(proc: psutil.Process) -> dict[str, float]:
    return {"fds": proc.num_fds(), "threads": proc.num_threads(), "rss_mb": proc.memory_info().rss / 2**20}


def mix(i: int, remote_url: str) -> dict[str, Any]:
    """The i-th request of the load: a quarter each remote, configured, approval, failing server."""
    kind = i % 4
    if kind == 0:
        tools = [remote(f"{remote_url}/calc/mcp")]
    elif kind == 1:
        tools = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
    elif kind == 2:
        tools = [{"type": "mcp", "server_label": "calc", "require_approval": "always"}]
    else:
        tools = [remote(f"{remote_url}/http500/mcp")]
    return {
        "model": "tiny",
        "input": "What is 2 plus 3?",
        "tools": tools,
        "temperature": 0,
        "max_output_tokens": 60,
    }


async def one(client: openai.AsyncOpenAI, body: dict[str, Any], stream: bool) -> str:
    if stream:
        final = None
        async with client.responses.stream(**body) as events:
            async for _ in events:
                pass
            final = await events.get_final_response()
        return final.id
    return (await client.responses.create(**body)).id


async def load(base_url: str, remote_url: str, count: int) -> tuple[list[Any], float]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=count)) as http:
        client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="-", http_client=http, max_retries=0)
        started = time.monotonic()
        results = await asyncio.gather(
            *(one(client, mix(i, remote_url), stream=i % 2 == 1) for i in range(count)),
            return_exceptions=True,
        )
        took = time.monotonic() - started
        stored = []
        for result in results:
            if isinstance(result, str):
                stored.append(await client.responses.retrieve(result))
    return results, took, stored  # type: ignore[return-value]


def test_64_concurrent_mcp_requests(vllm_server: str, remote_mcp_server: str) -> None:
    proc = server_process(vllm_server)
    asyncio.run(load(vllm_server, remote_mcp_server, 8))  # warm: pooled sessions, caches
    before = figures(proc)
    results, took, stored = asyncio.run(load(vllm_server, remote_mcp_server, REQUESTS))
    time.sleep(2)  # let closed connections settle
    after = figures(proc)
    errors = [r for r in results if not isinstance(r, str)]
    print(
        f"\nload: {REQUESTS} requests in {took:.1f}s, {len(errors)} errors, {len(stored)} stored; "
        f"before {before}, after {after}"
    )
    assert errors == [], errors[:3]
    assert len(stored) == REQUESTS
    assert all(r.status in ("completed", "incomplete") for r in stored), [r.status for r in stored]
    approvals = [r for r in stored if any(i.type == "mcp_approval_request" for i in r.output)]
    assert len(approvals) == REQUESTS // 4
    assert after["fds"] <= before["fds"] + 16, (before, after)
    assert after["threads"] <= before["threads"] + 8, (before, after)
    assert after["rss_mb"] <= before["rss_mb"] + 200, (before, after)
