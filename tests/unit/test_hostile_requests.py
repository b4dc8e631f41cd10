"""Hostile requests at the HTTP door in process (issue 14): deep nesting, oversized bodies and
deeply nested tool arguments are clear client errors, never a 500 or a crash."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, plugin_client
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import ServerConnection
from vllm_mcp_ext.types.parts import TextDelta
from vllm_mcp_ext.types.source import CallFailed

CALCULATOR = Path(__file__).resolve().parents[2] / "examples" / "servers" / "calculator.py"
CALC = StdioServerSpec("calc", sys.executable, (str(CALCULATOR),))
TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
DEEP_ARGS = '{"a": ' + "[" * 5000 + "]" * 5000 + ', "b": 3}'


@pytest.fixture
async def engine() -> ScriptedTurns:
    return ScriptedTurns([tool_call("add", DEEP_ARGS), [TextDelta("done")]])


@pytest.fixture
async def http(engine: ScriptedTurns, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with plugin_client(engine, (CALC,), tmp_path / "responses.sqlite3") as client:
        yield client


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP door with no MCP server configured: for what is refused before anything runs."""
    async with plugin_client(ScriptedTurns([]), (), tmp_path / "responses.sqlite3") as client:
        yield client


@pytest.mark.parametrize("depth", [70, 5_000, 200_000])
async def test_deeply_nested_bodies_are_a_400(bare: httpx.AsyncClient, depth: int) -> None:
    http = bare
    nested = "[" * depth + "]" * depth
    body = f'{{"model": "scripted", "input": "hi", "metadata": {{"x": {nested}}}}}'
    r = await http.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested more than 64 levels" in r.json()["error"]["message"]


async def test_an_oversized_body_is_a_413_without_reading_it_all(
    bare: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = bare
    monkeypatch.setenv("VLLM_MCP_MAX_REQUEST_BYTES", "100000")
    body = '{"model": "scripted", "input": "' + "x" * 200_000 + '"}'
    r = await http.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "request_too_large"


async def test_deeply_nested_tool_arguments_are_a_failed_call(http: httpx.AsyncClient) -> None:
    client = openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)
    r = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS)
    call = r.output[1]
    assert call.type == "mcp_call" and call.status == "failed"
    assert call.error is not None and "nested more than 64 levels" in str(call.error)
    assert r.status == "completed" and r.output_text == "done"


async def test_too_many_tools_in_a_request_is_a_400(
    bare: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = bare
    monkeypatch.setenv("VLLM_MCP_MAX_TOOLS", "3")
    tools = [{"type": "function", "name": f"f{i}", "parameters": {"type": "object"}} for i in range(4)]
    r = await http.post("/v1/responses", json={"model": "scripted", "input": "hi", "tools": tools})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tools" and "at most 3" in r.json()["error"]["message"]


async def test_calls_in_flight_per_configured_server_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_MCP_MAX_CALLS_PER_SERVER", "1")
    root = Path(__file__).resolve().parents[2]
    spec = StdioServerSpec(
        label="scenario",
        command=sys.executable,
        args=("-m", "tests.unit.servers.scenario", str(tmp_path), "stdio"),
        cwd=str(root),
    )
    connection = ServerConnection(spec, Settings(connect_timeout=20, call_timeout=2))
    connection.start()
    try:
        await connection.wait_first_attempt()
        session = await connection.session()  # its calls may run long; the wait for a slot may not
        session.timeouts = dataclasses.replace(session.timeouts, call=30)
        first = asyncio.create_task(connection.call_tool("wait", {"tag": "one"}))
        for _ in range(100):
            if (tmp_path / "one.started").exists():
                break
            await asyncio.sleep(0.05)
        with pytest.raises(CallFailed, match="too many calls in flight"):
            await connection.call_tool("add", {"a": 1, "b": 2})
        first.cancel()
    finally:
        await connection.stop()


def test_limits_come_from_the_tool_server_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vllm_mcp_ext import limits
    from vllm_mcp_ext.config.tool_servers import parse_tool_server_arg
    from vllm_mcp_ext.errors import ConfigError

    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {}, "limits": {"maxRequestBytes": 1000, "maxCallsPerServer": 2}}')
    monkeypatch.delenv("VLLM_MCP_MAX_REQUEST_BYTES", raising=False)
    monkeypatch.setenv("VLLM_MCP_MAX_CALLS_PER_SERVER", "5")
    try:
        limits.configure(parse_tool_server_arg(str(path)).limits)
        assert limits.max_request_bytes() == 1000
        assert limits.max_calls_per_server() == 5
        with pytest.raises(ConfigError, match="unknown field 'maxBodies'"):
            limits.configure({"maxBodies": 3})
    finally:
        limits.configure(None)
    assert limits.max_request_bytes() == limits.DEFAULT_MAX_REQUEST_BYTES
