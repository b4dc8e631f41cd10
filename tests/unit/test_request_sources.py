"""`RequestSources`: the one scope that gives a request's remote sessions back to the pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e.servers import remote_mcp
from tests.support.processes import free_port
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import RequestSources, ServerConnection, ServerUnavailable
from vllm_mcp_ext.servers.remote import RemoteMcp


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    with remote_mcp.running_in_thread(port) as url:
        yield url


async def test_leaving_the_scope_gives_the_sessions_back_once(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    service = RemoteMcp(RemoteSettings(allow=(f"127.0.0.1:{port}",), idle_timeout=0.2))
    try:
        first = service.source("a", f"{server}/calc/mcp", {}, "tok-aaaa", None, "tools[0]")
        second = service.source("b", f"{server}/calc/mcp", {}, "tok-bbbb", None, "tools[1]")
        configured = ServerConnection(StdioServerSpec(label="c", command="true"), Settings())
        async with RequestSources([first, second, configured]) as scope:
            await asyncio.gather(first.current_tools(), second.current_tools())
            assert len(service.pool) == 2
        assert scope.closed
        async with asyncio.timeout(5):  # given back: only now can they idle out
            while len(service.pool):
                await asyncio.sleep(0.02)
        scope.close()  # idempotent
        with pytest.raises(ServerUnavailable, match="the request is over"):
            await first.current_tools()
    finally:
        await service.close()


async def test_a_failing_stdio_server_is_not_relaunched_once_per_request(tmp_path) -> None:
    """A request may cut a failing server's backoff short once; then the backoff holds and
    requests fail fast with the last error (issue 14)."""
    launches = tmp_path / "launches"
    spec = StdioServerSpec(label="dies", command="sh", args=("-c", f"echo x >> {launches}; exit 1"))
    connection = ServerConnection(spec, Settings(connect_timeout=5, retry_max_delay=30))
    connection.start()
    try:
        await asyncio.wait_for(connection.wait_first_attempt(), 10)
        for _ in range(12):
            with pytest.raises(ServerUnavailable):
                await connection.current_tools()
            await asyncio.sleep(0.05)
        launched = len(launches.read_text().splitlines())
    finally:
        await connection.stop()
    assert launched <= 3, launched
