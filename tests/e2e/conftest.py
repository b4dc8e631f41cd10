"""One real vLLM server with the plugin per test session, real MCP servers on loopback, and the
real `openai` SDK as client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from vllm_mcp_ext.testing.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[2]
SERVERS = REPO / "examples" / "servers"
STARTUP_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-4000:] if log else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_port(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    """Wait until something accepts connections (an SSE GET would never finish)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}\n{log.read_text()[-4000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


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
def mcp_config(tmp_path_factory: pytest.TempPathFactory, mcp_http_servers: dict[str, str]) -> Path:
    config = {
        "mcpServers": {
            "calc": {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]},
            "notes": {"url": mcp_http_servers["notes"]},
            "facts": {"url": mcp_http_servers["facts"]},
            # nothing listens here: the dead server
            "ghost": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
        }
    }
    path = tmp_path_factory.mktemp("config") / "mcp.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return build_tiny_model()


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, mcp_config: Path, logs: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "VLLM_PLUGINS": "vllm_mcp_ext",
        "VLLM_MCP_CONNECT_TIMEOUT": "5",
        "VLLM_MCP_CALL_TIMEOUT": "20",
    }
    log = logs / "vllm.log"
    proc = start(
        [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(tiny_model),
            "--served-model-name", "tiny",
            "--dtype", "float32",
            "--enforce-eager",
            "--gpu-memory-utilization", "0.15",
            "--block-size", "32",
            "--max-model-len", "2048",
            "--enable-auto-tool-choice",
            "--tool-call-parser", "hermes",
            "--tool-server", str(mcp_config),
            "--port", str(port),
        ],
        log,
        env,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, STARTUP_TIMEOUT, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        print(f"vLLM log: {log}")


@pytest.fixture(scope="session")
def vllm_log(logs: Path) -> Path:
    return logs / "vllm.log"


@pytest.fixture(scope="session")
def client(vllm_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vllm_server}/v1", api_key="unused", max_retries=0, timeout=120)
