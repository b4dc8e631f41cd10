"""What a stdio server writes is bounded (servers/stdio.py): a message past the bound fails the
call with a message that says so and the server is started again; stderr reaches our log at a
bounded rate; ordinary calls pass unchanged."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio
import pytest

from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import ServerConnection
from vllm_mcp_ext.servers.session import McpSession, Timeouts
from vllm_mcp_ext.servers.stdio import OutputCaps, OutputTooLarge, Rate, lines
from vllm_mcp_ext.servers.transports import stdio
from vllm_mcp_ext.types.source import CallFailed

ROOT = Path(__file__).resolve().parents[2]
SPEC = StdioServerSpec(
    label="flood", command=sys.executable, args=("-m", "tests.unit.servers.flood"), cwd=str(ROOT)
)
TIMEOUTS = Timeouts(open=20, initialize=20, list=10, call=20)


def text(result) -> str:
    return "".join(getattr(b, "text", "") for b in result.content)


async def test_a_message_past_the_bound_fails_the_call_saying_so() -> None:
    session = McpSession("flood", [stdio(SPEC, OutputCaps(max_message_bytes=10_000))], TIMEOUTS)
    session.start("test:flood")
    try:
        await session.wait_open()
        assert text(await session.call_tool("big", {"n": 2_000})) == "x" * 2_000
        with pytest.raises(CallFailed, match="exceeded the 10000-byte limit"):
            await session.call_tool("big", {"n": 50_000})
    finally:
        await session.close()


async def test_a_configured_server_that_overflowed_is_started_again() -> None:
    conn = ServerConnection(SPEC, Settings(), Limits(max_stdio_message_bytes=10_000))
    conn.start()
    try:
        await conn.wait_first_attempt()
        with pytest.raises(CallFailed, match="byte limit"):
            await conn.call_tool("big", {"n": 50_000})
        with anyio.fail_after(30):
            while True:
                try:
                    assert text(await conn.call_tool("add", {"a": 2, "b": 3})) == "5"
                    break
                except CallFailed:
                    await anyio.sleep(0.2)  # the server is being started again
    finally:
        await conn.stop()


async def test_stderr_reaches_the_log_under_the_label_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caps = OutputCaps(max_log_bytes_per_second=2_000)
    session = McpSession("flood", [stdio(SPEC, caps)], TIMEOUTS)
    session.start("test:flood")
    with caplog.at_level(logging.INFO, logger="vllm_mcp_ext.servers.stdio"):
        try:
            await session.wait_open()
            assert text(await session.call_tool("shout", {"n": 500})) == "shouted"
            await anyio.sleep(0.3)
        finally:
            await session.close()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MCP server flood: line")]
    assert 0 < len(logged) < 100  # 500 lines of ~210 bytes written, ~2 kB/s logged
    dropped = [r.getMessage() for r in caplog.records if "stderr lines dropped" in r.getMessage()]
    assert dropped or len(logged) < 500


async def test_lines_are_split_and_a_long_one_is_refused_before_it_is_whole() -> None:
    send, receive = anyio.create_memory_object_stream[bytes](10)

    class Bytes:
        async def receive(self) -> bytes:
            try:
                return await receive.receive()
            except anyio.EndOfStream:
                raise

    await send.send(b'{"a":1}\n{"b"')
    await send.send(b":2}\n")
    await send.send(b"z" * 100)
    await send.aclose()
    got = []
    with pytest.raises(OutputTooLarge, match="over 50 bytes"):
        async for line in lines(Bytes(), 50, Rate(1 << 30)):  # type: ignore[arg-type]
            got.append(line)
    assert got == [b'{"a":1}', b'{"b":2}']


def test_the_stdio_bounds_are_limits_from_the_file_or_the_environment() -> None:
    limits = Limits.load({"maxStdioMessageBytes": 1000}, {"VLLM_MCP_MAX_STDIO_LOG_BYTES_PER_SECOND": "50"})
    caps = ServerConnection(SPEC, Settings(), limits).caps
    assert (caps.max_message_bytes, caps.max_bytes_per_second, caps.max_log_bytes_per_second) == (
        1000,
        64 * 1024 * 1024,
        50,
    )
