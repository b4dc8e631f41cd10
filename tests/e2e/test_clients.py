"""Popular Responses clients against the plugin, end to end (docs/compatibility.md).

- The Codex CLI (`codex exec`, a custom provider with `wire_api = "responses"`) finishes a turn.
- Recorded requests of Codex and of the OpenAI Agents SDK succeed on stock vLLM (no plugin) and
  on the plugin; Codex's request with an `mcp` tool added runs the MCP loop.
- The Vercel AI SDK (`generateText`, `streamText`, `openai.tools.mcp`) sees the `mcp_call` and its
  output, by remote URL, by connector_id and by `tool-server://` URL, and with a forced tool choice.
- LangChain's `ChatOpenAI(use_responses_api=True)` with an `mcp` tool, streamed and not.

Codex's prompt is about 24,000 tokens: this module serves a copy of the tiny model with a longer
context on two servers of its own (with the plugin, and stock), started only for these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REPO, STARTUP_TIMEOUT, serve, start
from tests.support.ci import unavailable
from tests.support.node import node_bin_dir, node_env
from tests.support.processes import free_port, stop, wait_http

pytestmark = pytest.mark.e2e

NODE = REPO / "tests" / "e2e" / "node"
REQUESTS = REPO / "tests" / "e2e" / "requests"
CODEX_REQUEST = json.loads((REQUESTS / "codex-0.169.0.json").read_text())
AGENTS_REQUESTS = json.loads((REQUESTS / "openai-agents-0.24.0.json").read_text())
LONG_CONTEXT = 32768
# Off-script prompts make the tiny model ramble; a short default keeps every turn quick.
SHORT_ANSWERS = ("--override-generation-config", json.dumps({"max_new_tokens": 32}))
CALC = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
ASK, CALL_OUTPUT, ANSWER = "What is 2 plus 3?", "5", "2 plus 3 is 5."  # a script the model knows


@pytest.fixture(scope="module")
def node_modules() -> Path:
    modules = NODE / "node_modules"
    if not modules.is_dir():
        unavailable("the JavaScript clients are not installed: python -m tests.support.node")
    return modules


@pytest.fixture(scope="module")
def long_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a context long enough for Codex's prompt (weights linked, not copied)."""
    copy = tmp_path_factory.mktemp("tiny-long")
    for item in tiny_model.iterdir():
        if item.name != "config.json":
            (copy / item.name).symlink_to(item)
    config = json.loads((tiny_model / "config.json").read_text())
    config["max_position_embeddings"] = LONG_CONTEXT
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def _long_flags() -> tuple[str, ...]:
    return ("--max-model-len", str(LONG_CONTEXT), "--gpu-memory-utilization", "0.05", *SHORT_ANSWERS)


@pytest.fixture(scope="module")
def long_server(long_model: Path, mcp_config: Path, logs: Path) -> Iterator[str]:
    with serve(long_model, mcp_config, logs / "vllm-long.log", *_long_flags()) as url:
        yield url


@pytest.fixture(scope="module")
def stock_server(long_model: Path, logs: Path) -> Iterator[str]:
    """vLLM as it is without the plugin (no VLLM_PLUGINS), same model and flags."""
    port, log = free_port(), logs / "vllm-stock.log"
    env = {k: v for k, v in os.environ.items() if k != "VLLM_PLUGINS"}
    proc = start(
        [
            str(Path(sys.executable).parent / "vllm"), "serve", str(long_model),
            "--served-model-name", "tiny", "--dtype", "float32", "--enforce-eager", "--block-size", "32",
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--port", str(port),
            *_long_flags(),
        ],
        log,
        env,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, STARTUP_TIMEOUT, log)
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/mcp/servers").status_code == 404, "the plugin is loaded"
        yield url
    finally:
        stop(proc)


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """The final response of a request, streamed or not; fails on any error status or event."""
    with httpx.Client(timeout=600) as http:
        if not body.get("stream"):
            r = http.post(f"{base_url}/v1/responses", json=body)
            assert r.status_code == 200, r.text
            return r.json()
        events = []
        with http.stream("POST", f"{base_url}/v1/responses", json=body) as r:
            assert r.status_code == 200, r.read().decode()
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
    final = [
        e for e in events if e["type"] in ("response.completed", "response.incomplete", "response.failed")
    ]
    assert [e["type"] for e in final] in (["response.completed"], ["response.incomplete"]), events[-3:]
    response = final[0]["response"]
    response["_events"] = events
    return response


# -- recorded requests: stock and plugin both answer ----------------------------------------------


@pytest.mark.parametrize("name", ["codex", "agents-sdk", "agents-sdk-streamed"])
def test_recorded_client_requests_succeed_on_stock_and_on_the_plugin(
    name: str, stock_server: str, long_server: str
) -> None:
    body = {
        "codex": CODEX_REQUEST,
        "agents-sdk": AGENTS_REQUESTS[0],
        "agents-sdk-streamed": AGENTS_REQUESTS[1],
    }[name]
    stock, plugin = post(stock_server, body), post(long_server, body)
    for response in (stock, plugin):
        assert response["status"] in ("completed", "incomplete"), response
        assert {item["type"] for item in response["output"]} <= {"message", "function_call", "reasoning"}
    assert [t["type"] for t in plugin["tools"]] == [t["type"] for t in stock["tools"]]
    assert plugin["instructions"] == stock["instructions"]
    if body.get("temperature") == 0:
        # One model, greedy: the plugin answers exactly what stock answers (the shipped tiny
        # model says nothing at all to the Agents SDK's off-script prompt; both must agree).
        assert said(plugin) == said(stock)


def said(response: dict[str, Any]) -> list[tuple[str, str]]:
    """What a response says, without ids: message texts and function calls."""
    out = []
    for item in response["output"]:
        if item["type"] == "message":
            out.append(("message", "".join(part.get("text", "") for part in item["content"])))
        elif item["type"] == "function_call":
            out.append((item["name"], item["arguments"]))
    return out


def test_codex_request_with_an_mcp_tool_runs_the_mcp_loop(long_server: str) -> None:
    body = {**CODEX_REQUEST, "tools": [*CODEX_REQUEST["tools"], CALC]}
    response = post(long_server, body)
    [listing] = [item for item in response["output"] if item["type"] == "mcp_list_tools"]
    assert listing["server_label"] == "calc" and "add" in [t["name"] for t in listing["tools"]]
    assert response["reasoning"]["summary"] == "auto"  # Codex's fields echoed
    assert response["prompt_cache_key"] == CODEX_REQUEST["prompt_cache_key"]
    assert [t["type"] for t in response["tools"]] == [t["type"] for t in body["tools"]]


def test_codex_request_with_a_forced_mcp_tool_calls_it(long_server: str) -> None:
    body = {
        **CODEX_REQUEST,
        "tools": [*CODEX_REQUEST["tools"], CALC],
        "tool_choice": {"type": "mcp", "server_label": "calc", "name": "add"},
        "max_output_tokens": 200,
    }
    response = post(long_server, body)
    calls = [item for item in response["output"] if item["type"] == "mcp_call"]
    assert calls and calls[0]["server_label"] == "calc" and calls[0]["name"] == "add", response["output"]
    assert calls[0]["status"] in ("completed", "failed")
    events = [e["type"] for e in response["_events"]]
    assert "response.mcp_call_arguments.done" in events


# -- the Codex CLI ---------------------------------------------------------------------------------


def test_codex_exec_finishes_against_the_plugin(node_modules: Path, long_server: str, tmp_path: Path) -> None:
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        'model = "tiny"\nmodel_provider = "vllm"\n\n[model_providers.vllm]\nname = "vLLM"\n'
        f'base_url = "{long_server}/v1"\nwire_api = "responses"\n'
        "request_max_retries = 0\nstream_max_retries = 0\n"
    )
    env = {**node_env(), "CODEX_HOME": str(home), "HOME": str(tmp_path)}
    env.pop("OPENAI_API_KEY", None)
    result = subprocess.run(
        [
            str(node_modules / ".bin" / "codex"),
            "exec",
            "--skip-git-repo-check",
            "-C",
            str(work),
            "Say hello.",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "tokens used" in output and "ERROR" not in output, output[-4000:]


# -- the Vercel AI SDK -----------------------------------------------------------------------------


def vercel(node_modules: Path, base_url: str, mode: str, tool: dict[str, Any], force: bool = False) -> dict:
    args = [
        str(node_bin_dir() / "node"),
        str(NODE / "vercel_mcp.mjs"),
        base_url,
        mode,
        json.dumps(tool),
        ASK,
        *(["force"] if force else []),
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=NODE)
    assert result.returncode == 0, result.stderr[-6000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _tool_server(remote_mcp_server: str, how: str) -> dict[str, Any]:
    return {
        "remote": {"serverLabel": "rcalc", "serverUrl": f"{remote_mcp_server}/calc/mcp"},
        "connector": {"serverLabel": "math", "connectorId": "calc"},
        "tool-server-url": {"serverLabel": "math", "serverUrl": "tool-server://calc"},
    }[how]


@pytest.mark.parametrize("mode", ["generate", "stream"])
@pytest.mark.parametrize("how", ["remote", "connector", "tool-server-url"])
def test_vercel_ai_sdk_sees_the_mcp_call_and_its_output(
    node_modules: Path, vllm_server: str, remote_mcp_server: str, mode: str, how: str
) -> None:
    tool = _tool_server(remote_mcp_server, how)
    out = vercel(node_modules, vllm_server, mode, tool)
    assert out["errors"] == []
    assert out["calls"] == [{"toolName": "mcp.add", "input": {"a": 2, "b": 3}, "providerExecuted": True}]
    [result] = out["results"]
    assert (result["serverLabel"], result["name"], result["output"]) == (
        tool["serverLabel"],
        "add",
        CALL_OUTPUT,
    )
    assert out["text"] == ANSWER and out["finishReason"] == "stop"


def test_vercel_forced_mcp_tool_choice_has_no_label_and_is_accepted(
    node_modules: Path, vllm_server: str
) -> None:
    out = vercel(
        node_modules, vllm_server, "generate", {"serverLabel": "math", "connectorId": "calc"}, force=True
    )
    assert out["sentToolChoice"] == {"type": "mcp"}
    assert [c["toolName"] for c in out["calls"]] == ["mcp.add"]
    assert out["results"][0]["output"] == CALL_OUTPUT and out["text"] == ANSWER


# -- LangChain ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_langchain_responses_mode_with_an_mcp_tool(vllm_server: str, streamed: bool) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model="tiny",
        base_url=f"{vllm_server}/v1",
        api_key="unused",  # type: ignore[arg-type]
        temperature=0,
        use_responses_api=True,
        output_version="responses/v1",
        max_retries=0,
    ).bind_tools([CALC])
    if streamed:
        message: Any = None
        for chunk in llm.stream(ASK):
            message = chunk if message is None else message + chunk
    else:
        message = llm.invoke(ASK)
    blocks = [b for b in message.content if isinstance(b, dict)]
    calls = [b for b in blocks if b.get("type") == "mcp_call"]
    assert [(c["server_label"], c["name"], c["output"]) for c in calls] == [("calc", "add", CALL_OUTPUT)]
    assert [b.get("type") for b in blocks if b.get("type") == "mcp_list_tools"] == ["mcp_list_tools"]
    assert message.text == ANSWER
