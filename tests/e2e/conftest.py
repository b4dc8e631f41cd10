"""One real vLLM server with the plugin per test session, real MCP servers on loopback, and the
real `openai` SDK as client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import psutil
import pytest

from tests.e2e.wire import Captured, CapturingTransport, OpenResponses
from tests.support import oauth_server as oauth_server_app
from tests.support import processes
from tests.support.lora import write_lora_adapter
from tests.support.processes import free_port, stop, wait_http, wait_port
from tests.support.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[2]
SERVERS = REPO / "examples" / "servers"
STARTUP_TIMEOUT = 600


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """scripts/test.sh runs modules in a random order, and the tests of a module too, except
    here: an end-to-end module's tests share servers that earlier tests leave as they found them
    only eventually (a crashed calculator relaunching, pooled sessions, metric counts), so each
    module keeps its file order while the modules are shuffled among all the others."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.random_order(disabled=True))


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
def slow_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the slow calculator leaves ``.started`` / ``.cancelled`` files."""
    return tmp_path_factory.mktemp("slow") / "add"


@pytest.fixture(scope="session")
def tasks_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tasks calculator writes each task method it sees (``.hold`` keeps `add` running)."""
    return tmp_path_factory.mktemp("tasks") / "seen"


@pytest.fixture(scope="session")
def tasks26_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the 2026-07-28 tasks calculator writes each task method and ``mcp-name`` it sees
    (``.hold`` keeps its tasks working)."""
    return tmp_path_factory.mktemp("tasks26") / "seen"


@pytest.fixture(scope="session")
def tasks26_server(logs: Path, tasks26_marker: Path) -> Iterator[str]:
    """The calculator's tools as 2026-07-28 extension tasks over streamable HTTP; its URL."""
    port = free_port()
    log = logs / "tasks26.log"
    script = REPO / "tests" / "e2e" / "servers" / "tasks_extension_calculator.py"
    proc = start([sys.executable, str(script), str(tasks26_marker), "--port", str(port)], log)
    try:
        wait_port(port, proc, 30, log)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite response store every vLLM server of the session shares."""
    return tmp_path_factory.mktemp("store") / "responses.sqlite3"


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
def oauth_server(logs: Path) -> Iterator[str]:
    """The test authorization server and the calculator it guards (tests/support/oauth_server.py)."""
    port = free_port()
    log = logs / "oauth_server.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = start([sys.executable, "-m", "tests.support.oauth_server", "--port", str(port)], log, env)
    try:
        wait_http(f"http://127.0.0.1:{port}/state", proc, 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def vault(oauth_url: str) -> dict:
    """A configured server behind OAuth with client credentials, the secret from the environment."""
    secret = f"${{{oauth_server_app.SECRET_VAR}}}"
    return {
        "url": f"{oauth_url}/mcp",
        "oauth": {"client_id": oauth_server_app.CLIENT_ID, "client_secret": secret},
    }


@pytest.fixture(scope="session")
def main_config(mcp_config: Path, oauth_server: str, store_path: Path, logs: Path) -> Path:
    """The first server's tool-server file: the shared one plus ``vaultlogin``, a server behind
    the authorization code, which the operator logged in to (the real login command, with this
    fixture as the browser) before the API server starts. Other servers of the session keep
    their responses elsewhere, so they would find no login: they do not have it."""
    config = json.loads(mcp_config.read_text())
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    config["mcpServers"]["vaultlogin"] = {
        "url": f"{oauth_server}/mcp",
        "oauth": {"grant": "authorization_code", "redirect_uri": redirect},
    }
    path = mcp_config.with_name("mcp-main.json")
    path.write_text(json.dumps(config, indent=2))
    run_login(path, store_path, "vaultlogin", logs / "login.log")
    return path


def run_login(config: Path, store: Path, label: str, log: Path) -> str:
    """The login command in the API server's environment (it reads the same file)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        oauth_server_app.SECRET_VAR: oauth_server_app.CLIENT_SECRET,
    }
    command = [sys.executable, "-m", "vllm_mcp_ext.cli.login", label, "--tool-server", str(config)]
    proc = subprocess.Popen(
        [*command, "--store", str(store), "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip().startswith("http"):
            browser = httpx.get(line.strip(), follow_redirects=True, timeout=30)
            assert browser.status_code == 200 and "Logged in." in browser.text
            break
    lines.extend(proc.stdout)
    output = "".join(lines)
    log.write_text(output)
    assert proc.wait(timeout=60) == 0, output
    return output


@pytest.fixture(scope="session")
def mcp_config(
    tmp_path_factory: pytest.TempPathFactory,
    mcp_http_servers: dict[str, str],
    slow_marker: Path,
    tasks_marker: Path,
    tasks26_server: str,
    remote_mcp_server: str,
    oauth_server: str,
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
            # the calculator with an `add` that takes a minute (cancel tests)
            "slowcalc": {
                "command": sys.executable,
                "args": [str(REPO / "tests" / "e2e" / "servers" / "slow_calculator.py"), str(slow_marker)],
            },
            # the calculator's tools, which ask the client for input (multiply), a model's answer
            # (divide), and report progress and logs (add): tests/e2e/test_server_requests.py
            "asking": {
                "command": sys.executable,
                "args": [str(REPO / "tests" / "e2e" / "servers" / "asking_calculator.py")],
                "elicitation": "accept_defaults",
                "sampling": {"maxTokens": 16, "maxTokensPerResponse": 64},
            },
            # the same server, asking the user: its questions pause the response (elicitation ask)
            "askme": {
                "command": sys.executable,
                "args": [str(REPO / "tests" / "e2e" / "servers" / "asking_calculator.py")],
                "elicitation": "ask",
            },
            # the calculator's tools run as MCP tasks (tests/e2e/test_tasks.py)
            "tasks": {
                "command": sys.executable,
                "args": [str(REPO / "tests" / "e2e" / "servers" / "tasks_calculator.py"), str(tasks_marker)],
                "elicitation": "accept_defaults",
            },
            # the same tools as tasks of the 2026-07-28 extension, negotiated by "auto"
            "tasks26": {"url": tasks26_server, "protocol": "auto", "elicitation": "accept_defaults"},
            # the same server, asking the user: a task's question pauses the response
            "tasks26ask": {"url": tasks26_server, "protocol": "auto", "elicitation": "ask"},
            # nothing listens here: the dead server
            "ghost": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
            "vault": vault(oauth_server),
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
def serve(
    model: Path,
    config: Path,
    log: Path,
    *flags: str,
    store: Path | str | None = None,
    api_keys: tuple[str, ...] = (),
) -> Iterator[str]:
    """`vllm serve` with the plugin, as a user types it; yields the base URL. ``store``: a SQLite
    file or a ``postgresql://`` URL (none kept without it). ``api_keys``
    go to ``--api-key`` (the first one is used to wait for the MCP servers).

    On the way out it checks that the stdio MCP servers the plugin started went with it.
    """
    port = free_port()
    env = {
        **os.environ,
        "VLLM_PLUGINS": "vllm_mcp_ext",
        # the plugin from this checkout, whichever checkout the editable install points at
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VLLM_MCP_CONNECT_TIMEOUT": "20",
        "VLLM_MCP_CALL_TIMEOUT": "20",
        "VLLM_MCP_STORE": str(store) if store else "off",
        "VLLM_MCP_TRACE": "1",  # per-turn prompt and cached tokens at /v1/mcp/traces/{id}
        oauth_server_app.SECRET_VAR: oauth_server_app.CLIENT_SECRET,  # ${VAR} in the tool-server file
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
            *(["--api-key", *api_keys] if api_keys else []),  # one flag, several keys
            *flags,
        ],
        log,
        env,
    )  # fmt: skip
    stdio_children: list[psutil.Process] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, STARTUP_TIMEOUT, log)
        wait_servers_ready(f"http://127.0.0.1:{port}", api_key=api_keys[0] if api_keys else None)
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


def wait_servers_ready(base_url: str, timeout: float = 120, api_key: str | None = None) -> None:
    """Tests start once every configured MCP server but the dead one is connected: on a busy
    machine a stdio server can take seconds to start."""
    deadline = time.monotonic() + timeout
    waiting: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    while time.monotonic() < deadline:
        servers = httpx.get(f"{base_url}/v1/mcp/servers", timeout=10, headers=headers).json()["data"]
        waiting = [s["label"] for s in servers if s["label"] != "ghost" and s["status"] != "ready"]
        if not waiting:
            return
        time.sleep(0.5)
    raise AssertionError(f"MCP servers not ready after {timeout:g}s: {waiting}")


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, main_config: Path, logs: Path, store_path: Path) -> Iterator[str]:
    with serve(tiny_model, main_config, logs / "vllm.log", store=store_path) as url:
        yield url


@pytest.fixture(scope="session")
def lora_adapters(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Path]:
    """Two LoRA adapters of the tiny model: one that changes nothing (B = 0) and one that does."""
    root = tmp_path_factory.mktemp("lora")
    return {
        "tiny-same": write_lora_adapter(root / "same", tiny_model, scale=0.0),
        "tiny-noise": write_lora_adapter(root / "noise", tiny_model, scale=2.0, seed=1),
    }


@pytest.fixture(scope="session")
def reasoning_server(
    tiny_model: Path, mcp_config: Path, logs: Path, store_path: Path, lora_adapters: dict[str, Path]
) -> Iterator[str]:
    """A second server of the same model with a reasoning parser, for the <think> script, and
    LoRA adapters served beside it. It shares the response store with the first: two API
    server processes, one SQLite file."""
    log = logs / "vllm-reasoning.log"
    lora = ["--enable-lora", "--max-lora-rank", "8", "--lora-modules"]
    lora += [f"{name}={path}" for name, path in lora_adapters.items()]
    with serve(tiny_model, mcp_config, log, "--reasoning-parser", "qwen3", *lora, store=store_path) as url:
        yield url


@pytest.fixture(scope="session")
def wire_log() -> Iterator[list[Captured]]:
    """Every `/v1/responses*` body and event the SDK clients received; checked at the end of the
    session against the Open Responses schema."""
    sink: list[Captured] = []
    yield sink
    spec = OpenResponses.load()
    if spec is None:
        return  # the spec lives in ../shared, which CI has
    errors = [error for record in sink for error in spec.check(record)]
    assert not errors, f"{len(errors)} bodies/events do not validate:\n" + "\n".join(errors[:30])


def sdk_client(base_url: str, sink: list[Captured]) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{base_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=120,
        http_client=httpx.Client(transport=CapturingTransport(sink), timeout=120),
    )


@pytest.fixture(scope="session")
def reasoning_client(reasoning_server: str, wire_log: list[Captured]) -> openai.OpenAI:
    return sdk_client(reasoning_server, wire_log)


@pytest.fixture(scope="session")
def vllm_log(logs: Path) -> Path:
    return logs / "vllm.log"


@pytest.fixture(scope="session")
def client(vllm_server: str, wire_log: list[Captured]) -> openai.OpenAI:
    return sdk_client(vllm_server, wire_log)


@pytest.fixture(scope="session")
def beyond_spec_client(vllm_server: str) -> openai.OpenAI:
    """The session server's client for traffic the Open Responses spec does not describe
    (OpenAI's `tool_search` tools and compaction items, newer than the spec; stock vLLM's own
    404 body): not captured for the schema check that `client`'s traffic must pass."""
    return openai.OpenAI(base_url=f"{vllm_server}/v1", api_key="unused", max_retries=0, timeout=120)
