"""One real vLLM server with the plugin per test session, real MCP servers on loopback, and the
real `openai` SDK as client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import psutil
import pytest

from vllm_mcp_ext.testing import processes
from vllm_mcp_ext.testing.processes import free_port, stop, wait_http, wait_port
from vllm_mcp_ext.testing.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[2]
SERVERS = REPO / "examples" / "servers"
STARTUP_TIMEOUT = 600


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return processes.start(cmd, log, env, cwd=REPO)


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def mcp_http_servers(logs: Path) -> Iterator[dict[str, str]]:
    """notes over streamable HTTP and facts over SSE, on free loopback ports."""
    notes_port, facts_port = free_port(), free_port()
    procs = [
        start([sys.executable, str(SERVERS / "notes.py"), "--port", str(notes_port)], logs / "notes.log"),
        start([sys.executable, str(SERVERS / "facts.py"), "--port", str(facts_port)], logs / "facts.log"),
    ]
    urls = {
        "notes": f"http://127.0.0.1:{notes_port}/mcp",
        "facts": f"http://127.0.0.1:{facts_port}/sse",
    }
    try:
        wait_port(notes_port, procs[0], 30, logs / "notes.log")
        wait_port(facts_port, procs[1], 30, logs / "facts.log")
        yield urls
    finally:
        for p in procs:
            stop(p)


@pytest.fixture(scope="session")
def remote_mcp_server(logs: Path) -> Iterator[str]:
    """Remote MCP servers for server_url tests (tests/e2e/servers/remote_mcp.py); the base URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    log = logs / "remote_mcp.log"
    proc = start(
        [sys.executable, str(REPO / "tests" / "e2e" / "servers" / "remote_mcp.py"), "--port", str(port)],
        log,
        env,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/state", proc, 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def remote_section(remote_url: str) -> dict:
    """The operator's remote-mode settings for the suite: its own loopback server is allowed by
    host:port, and two names answer 127.0.0.1 without DNS (one allowed, one not)."""
    port = remote_url.rsplit(":", 1)[1]
    return {
        "allow": [f"127.0.0.1:{port}", f"tools.test:{port}"],
        "hosts": {"tools.test": "127.0.0.1", "rebind.test": "127.0.0.1"},
        "callTimeout": 4,
        "connectTimeout": 5,
        "listTimeout": 5,
        "maxResponseBytes": 1_000_000,
    }


@pytest.fixture(scope="session")
def mcp_config(
    tmp_path_factory: pytest.TempPathFactory, mcp_http_servers: dict[str, str], remote_mcp_server: str
) -> Path:
    config = {
        "mcpServers": {
            "calc": {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]},
            "notes": {"url": mcp_http_servers["notes"]},
            "facts": {"url": mcp_http_servers["facts"]},
            # adds a tool at run time and says so with tools/list_changed
            "late": {
                "command": sys.executable,
                "args": [str(REPO / "tests" / "e2e" / "servers" / "late_tool.py")],
            },
            # nothing listens here: the dead server
            "ghost": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
        },
        "remoteMcp": remote_section(remote_mcp_server),
    }
    path = tmp_path_factory.mktemp("config") / "mcp.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return build_tiny_model()


@contextmanager
def serve(model: Path, config: Path, log: Path, *flags: str) -> Iterator[str]:
    """`vllm serve` with the plugin, as a user types it; yields the base URL.

    On the way out it checks that the stdio MCP servers the plugin started went with it.
    """
    port = free_port()
    env = {
        **os.environ,
        "VLLM_PLUGINS": "vllm_mcp_ext",
        # the plugin from this checkout, whichever checkout the editable install points at
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VLLM_MCP_CONNECT_TIMEOUT": "5",
        "VLLM_MCP_CALL_TIMEOUT": "20",
    }
    proc = start(
        [
            str(Path(sys.executable).parent / "vllm"), "serve", str(model),
            "--served-model-name", "tiny",
            "--dtype", "float32",
            "--enforce-eager",
            "--gpu-memory-utilization", "0.15",
            "--block-size", "32",
            "--max-model-len", "2048",
            "--enable-auto-tool-choice",
            "--tool-call-parser", "hermes",
            "--tool-server", str(config),
            "--port", str(port),
            *flags,
        ],
        log,
        env,
    )  # fmt: skip
    stdio_children: list[psutil.Process] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, STARTUP_TIMEOUT, log)
        yield f"http://127.0.0.1:{port}"
        stdio_children = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "calculator.py" in " ".join(p.cmdline())
        ]
    finally:
        stop(proc)
        print(f"vLLM log: {log}")
    _, alive = psutil.wait_procs(stdio_children, timeout=10)
    assert not alive, f"stdio MCP servers outlived the API server: {[p.pid for p in alive]}"


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, mcp_config: Path, logs: Path) -> Iterator[str]:
    with serve(tiny_model, mcp_config, logs / "vllm.log") as url:
        yield url


@pytest.fixture(scope="session")
def reasoning_server(tiny_model: Path, mcp_config: Path, logs: Path) -> Iterator[str]:
    """A second server of the same model with a reasoning parser, for the <think> script."""
    with serve(tiny_model, mcp_config, logs / "vllm-reasoning.log", "--reasoning-parser", "qwen3") as url:
        yield url


@pytest.fixture(scope="session")
def reasoning_client(reasoning_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{reasoning_server}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def vllm_log(logs: Path) -> Path:
    return logs / "vllm.log"


@pytest.fixture(scope="session")
def client(vllm_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vllm_server}/v1", api_key="unused", max_retries=0, timeout=120)
