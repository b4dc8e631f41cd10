"""The one MCP session (`servers.session.McpSession`) over every transport: in-memory (the SDK's
memory streams), stdio (a real subprocess), streamable HTTP and SSE (real servers on loopback).
The same scenario runs over each: list, call, a failing call, a server that dies mid-call, and a
cancelled caller whose call the server sees cancelled."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import types
from mcp.client._transport import TransportStreams
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.memory import create_client_server_memory_streams

from tests.support.processes import free_port
from tests.unit.servers import scenario
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import ServerConnection, transports
from vllm_mcp_ext.servers.session import McpSession, Timeouts
from vllm_mcp_ext.servers.transports import Transport
from vllm_mcp_ext.types.source import LOST, CallFailed, Code

ROOT = Path(__file__).resolve().parents[2]
TIMEOUTS = Timeouts(open=20, initialize=20, list=10, call=30)
KINDS = ["memory", "stdio", "streamable_http", "sse"]


def in_memory(markers: Path) -> Transport:
    """The scenario server in this process; ``crash`` ends it as an exited process would: its
    handlers stop and its side of the streams closes."""

    @asynccontextmanager
    async def open_streams() -> AsyncIterator[TransportStreams]:
        died = anyio.Event()
        server = scenario.build(markers, died.set)._lowlevel_server
        async with create_client_server_memory_streams() as (client, (server_read, server_write)):

            async def run_until_dead() -> None:
                async with anyio.create_task_group() as running:
                    running.start_soon(
                        server.run, server_read, server_write, server.create_initialization_options()
                    )
                    await died.wait()
                    running.cancel_scope.cancel()
                await server_write.aclose()
                await server_read.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(run_until_dead)
                try:
                    yield client
                finally:
                    tg.cancel_scope.cancel()

    return Transport("stdio", open_streams)  # the kind is only a name here


def stdio_spec(markers: Path) -> StdioServerSpec:
    args = ("-m", "tests.unit.servers.scenario", str(markers), "stdio")
    return StdioServerSpec(label="scenario", command=sys.executable, args=args, cwd=str(ROOT))


@asynccontextmanager
async def http_server(kind: str, markers: Path) -> AsyncIterator[str]:
    """The scenario server in its own process on loopback; yields its base URL once uvicorn
    says it is running."""
    port = free_port()
    mode = "sse" if kind == "sse" else "streamable-http"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.unit.servers.scenario", str(markers), mode, str(port),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"Uvicorn running on" not in (line := await proc.stderr.readline()):
                assert line, "the scenario server exited before it served"
        drain = asyncio.create_task(_drain(proc.stderr))
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@asynccontextmanager
async def transport_for(kind: str, markers: Path) -> AsyncIterator[Transport]:
    if kind == "memory":
        yield in_memory(markers)
    elif kind == "stdio":
        yield transports.configured(stdio_spec(markers))
    else:
        async with http_server(kind, markers) as base:
            if kind == "sse":
                yield transports.sse(f"{base}/sse")
            else:
                yield transports.streamable_http(f"{base}/mcp", create_mcp_http_client)


@asynccontextmanager
async def opened(kind: str, markers: Path) -> AsyncIterator[McpSession]:
    async with transport_for(kind, markers) as transport:
        session = McpSession("scenario", [transport], TIMEOUTS)
        session.start(f"mcp-test:{kind}")
        try:
            await session.wait_open()
            yield session
        finally:
            await session.close()
        assert session.retired


def text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", KINDS)
async def test_lists_and_calls(kind: str, tmp_path: Path) -> None:
    async with opened(kind, tmp_path) as session:
        assert [t.name for t in session.tools] == scenario.TOOLS
        assert session.server_name == "scenario"
        result = await session.call_tool("add", {"a": 2, "b": 3})
        assert (result.is_error, text(result)) == (False, "5")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_failing_tool_is_an_error_result_and_the_session_keeps_serving(
    kind: str, tmp_path: Path
) -> None:
    async with opened(kind, tmp_path) as session:
        failed = await session.call_tool("divide", {"a": 1, "b": 0})
        assert failed.is_error and "division by zero" in text(failed)
        assert not session.retired
        assert text(await session.call_tool("divide", {"a": 6, "b": 3})) == "2.0"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_that_dies_mid_call_fails_the_call_as_lost(kind: str, tmp_path: Path) -> None:
    async with opened(kind, tmp_path) as session:
        with pytest.raises(CallFailed) as info:
            await asyncio.wait_for(session.call_tool("crash", {}), 15)
        assert info.value.rpc_code == Code.CONNECTION_CLOSED and info.value.message.startswith(LOST)
        assert info.value.outcome().error.code == -32000  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["task", "anyio_scope"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_cancelled_caller_cancels_the_call_on_the_server(kind: str, how: str, tmp_path: Path) -> None:
    """``anyio_scope`` is how Starlette cancels a response whose client went away: a cancel scope
    around the handler, the calls under ``asyncio.gather``."""
    async with opened(kind, tmp_path) as session:

        async def handler() -> None:
            await asyncio.gather(session.call_tool("wait", {"tag": "t"}))

        if how == "task":
            call = asyncio.create_task(handler())
            await until((tmp_path / "t.started").exists)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(handler)
                await until((tmp_path / "t.started").exists)
                tg.cancel_scope.cancel()
        await until((tmp_path / "t.cancelled").exists)
        # the session outlives the cancelled call
        assert text(await session.call_tool("add", {"a": 1, "b": 1})) == "2"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_call_past_its_timeout_is_a_timeout_the_server_sees_cancelled(
    kind: str, tmp_path: Path
) -> None:
    async with opened(kind, tmp_path) as session:
        with pytest.raises(CallFailed) as info:
            await session.call_tool("wait", {"tag": "slow"}, timeout=0.5)
        assert info.value.rpc_code == Code.REQUEST_TIMEOUT
        await until((tmp_path / "slow.cancelled").exists)


async def test_a_configured_server_reopens_after_it_died(tmp_path: Path) -> None:
    conn = ServerConnection(stdio_spec(tmp_path), Settings())
    conn.start()
    try:
        await conn.wait_first_attempt()
        first = await conn.session()
        with pytest.raises(CallFailed):
            await conn.call_tool("crash", {})
        await asyncio.wait_for(first.wait_closed(), 10)
        assert text(await conn.call_tool("add", {"a": 2, "b": 2})) == "4"  # a new process
        assert (await conn.session()) is not first and conn.snapshot().status == "ready"
    finally:
        await conn.stop()
