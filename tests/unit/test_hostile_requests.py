"""Hostile requests at the HTTP door in process (issue 14): deep nesting, oversized bodies and
deeply nested tool arguments are clear client errors, never a 500 or a crash."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, CALC, plugin_client
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.config import StdioServerSpec, ToolServerConfig, options
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.config.tool_servers import parse_tool_server_arg
from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.runtime import Runtime
from vllm_mcp_ext.servers import ServerConnection
from vllm_mcp_ext.types.parts import TextDelta
from vllm_mcp_ext.types.source import CallFailed

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


async def test_an_oversized_body_is_a_413_without_reading_it_all(tmp_path: Path) -> None:
    limits = Limits(max_request_bytes=100_000)
    async with plugin_client(ScriptedTurns([]), (), tmp_path / "r.sqlite3", limits=limits) as http:
        body = '{"model": "scripted", "input": "' + "x" * 200_000 + '"}'
        r = await http.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "request_too_large"
    assert "larger than 100000 bytes" in r.json()["error"]["message"]


async def test_deeply_nested_tool_arguments_are_a_failed_call(http: httpx.AsyncClient) -> None:
    client = openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)
    r = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS)
    call = r.output[1]
    assert call.type == "mcp_call" and call.status == "failed"
    assert call.error is not None and "nested more than 64 levels" in str(call.error)
    assert r.status == "completed" and r.output_text == "done"


async def test_too_many_tools_in_a_request_is_a_400(tmp_path: Path) -> None:
    tools = [{"type": "function", "name": f"f{i}", "parameters": {"type": "object"}} for i in range(4)]
    limits = Limits(max_tools=3)
    async with plugin_client(ScriptedTurns([]), (), tmp_path / "r.sqlite3", limits=limits) as http:
        r = await http.post("/v1/responses", json={"model": "scripted", "input": "hi", "tools": tools})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tools" and "at most 3" in r.json()["error"]["message"]


async def test_calls_in_flight_per_configured_server_are_capped(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    spec = StdioServerSpec(
        label="scenario",
        command=sys.executable,
        args=("-m", "tests.unit.servers.scenario", str(tmp_path), "stdio"),
        cwd=str(root),
    )
    connection = ServerConnection(
        spec, Settings(connect_timeout=20, call_timeout=2), Limits(max_calls_per_server=1)
    )
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


def test_limits_come_from_the_tool_server_file_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {}, "limits": {"maxRequestBytes": 1000, "maxCallsPerServer": 2}}')
    env = {"VLLM_MCP_MAX_CALLS_PER_SERVER": "5"}
    limits = Limits.load(parse_tool_server_arg(str(path)).limits, env)
    assert limits == Limits(max_request_bytes=1000, max_tools=128, max_calls_per_server=5)
    assert Limits.load(None, {}) == Limits()


@pytest.mark.parametrize(
    ("section", "env", "named"),
    [
        ({"maxBodies": 3}, {}, "limits: unknown field 'maxBodies'"),
        ({"maxTools": 0}, {}, "limits: field 'maxTools' must be a positive integer"),
        ({"maxTools": 2.5}, {}, "limits: field 'maxTools' must be a positive integer"),
        ({"maxTools": "8"}, {}, "limits: field 'maxTools' must be a positive integer"),
        ({"maxTools": True}, {}, "limits: field 'maxTools' must be a positive integer"),
        ({}, {"VLLM_MCP_MAX_TOOLS": "many"}, "VLLM_MCP_MAX_TOOLS='many' is not a whole number"),
        ({}, {"VLLM_MCP_MAX_REQUEST_BYTES": "-1"}, "VLLM_MCP_MAX_REQUEST_BYTES must be positive"),
        ({}, {"VLLM_MCP_MAX_CALLS_PER_SERVER": "0"}, "VLLM_MCP_MAX_CALLS_PER_SERVER must be positive"),
    ],
)
def test_a_bad_limit_is_a_config_error_naming_it(
    section: dict[str, Any], env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        Limits.load(section, env)


async def test_a_bad_limit_in_the_environment_stops_the_runtime_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VLLM_MCP_MAX_TOOLS", "12abc")
    with pytest.raises(ConfigError, match="VLLM_MCP_MAX_TOOLS='12abc' is not a whole number"):
        await Runtime.start(None, ToolServerConfig())


async def test_two_runtimes_in_one_process_keep_their_own_limits(tmp_path: Path) -> None:
    tools = [{"type": "function", "name": f"f{i}", "parameters": {"type": "object"}} for i in range(3)]
    body = {"model": "scripted", "input": "hi", "tools": tools}
    async with (
        plugin_client(ScriptedTurns([[TextDelta("ok")]]), (), tmp_path / "a.sqlite3") as roomy,
        plugin_client(ScriptedTurns([]), (), tmp_path / "b.sqlite3", limits=Limits(max_tools=2)) as tight,
    ):
        refused = await tight.post("/v1/responses", json=body)
        served = await roomy.post("/v1/responses", json=body)
    assert refused.status_code == 400 and "at most 2" in refused.json()["error"]["message"]
    assert served.status_code == 200, served.text
    assert served.json()["output"][-1]["content"][0]["text"] == "ok"


def test_security_md_names_every_limit_with_its_file_key_and_variable() -> None:
    rows = [
        line
        for line in (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text().splitlines()
        if line.startswith("|")
    ]
    for key, env in options.names(Limits).values():
        assert any(f"`limits.{key}` / `{env}`" in row for row in rows), (key, env)
