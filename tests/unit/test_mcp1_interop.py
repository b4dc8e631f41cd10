"""Servers built on the previous major of the MCP SDK (1.x, protocol 2025-11-25) work beside
2.x ones, over stdio and streamable HTTP (issue 14). The 1.x server runs from its own virtual
environment (tests/support/mcp1.py), so the two SDKs never share a process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ci import unavailable
from tests.support.mcp1 import mcp1_python
from tests.support.processes import free_port
from vllm_mcp_ext.config import HttpServerSpec, StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.servers import ToolServerRegistry

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "e2e" / "servers" / "mcp1_server.py"
CALCULATOR = ROOT / "examples" / "servers" / "calculator.py"


@pytest.fixture(scope="module")
def python1() -> Path:
    python = mcp1_python()
    if python is None:
        unavailable("the mcp 1.x environment could not be installed (python -m tests.support.mcp1)")
    return python


@pytest.fixture(scope="module")
def http_v1(python1: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(python1), str(SERVER), "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        for _ in range(300):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError("the mcp 1.x server exited") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_v1_servers_over_stdio_and_http_beside_a_v2_server(python1: Path, http_v1: str) -> None:
    specs = (
        StdioServerSpec(label="v1stdio", command=str(python1), args=(str(SERVER), "stdio")),
        HttpServerSpec(url=http_v1, transport="streamable_http", label="v1http"),
        StdioServerSpec(label="v2", command=sys.executable, args=(str(CALCULATOR),)),
    )
    registry = ToolServerRegistry(specs, Settings(connect_timeout=30, call_timeout=30))
    await registry.start()
    try:
        for label in ("v1stdio", "v1http", "v2"):
            connection = registry.get(label)
            assert connection is not None
            tools = await connection.current_tools()
            assert "add" in [t.name for t in tools], (label, connection.snapshot())
            result = await asyncio.wait_for(connection.call_tool("add", {"a": 2, "b": 3}), 30)
            assert [c.text for c in result.content] == ["5"], (label, result)  # type: ignore[union-attr]
        negotiated = {label: registry.get(label).server_name for label in ("v1stdio", "v1http")}  # type: ignore[union-attr]
        assert negotiated == {"v1stdio": "calc-v1", "v1http": "calc-v1"}
    finally:
        await registry.stop()
