"""The servers a benchmark run talks to: the MCP tool server, vLLM with the plugin, LiteLLM.

Everything runs on loopback in its own process group and is stopped on the way out.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port, start, stop, wait_http, wait_port

REPO = Path(__file__).resolve().parents[1]
TOOLS_SERVER = REPO / "benchmarks" / "servers" / "bench_tools.py"
MODEL_NAME = "bench"


@dataclass(frozen=True)
class Mode:
    name: str
    vllm_flags: tuple[str, ...]
    block_size: int
    c1_requests: int  # requests per variant at concurrency 1
    concurrency: tuple[int, ...]
    requests_per_worker: int  # per throughput phase
    conversations: int  # turn_prefix conversations per style
    long_text: int  # words of the final answer in the overhead scenario
    micro_tokens: tuple[int, ...]  # synthetic stream lengths
    mcp_calls: int  # calls per mcp_call variant
    early_ms: int  # fixed latency of the tool in the early-execution scenario
    long_arg_tokens: tuple[int, ...] = (100, 1000, 8000)  # long_args: argument lengths
    long_arg_repeats: int = 5  # long_args: runs per variant (best kept)
    format_arg_tokens: tuple[int, ...] = (100, 1000, 4000)  # formats_long_args: argument lengths
    cpu_concurrency: tuple[int, ...] = (1, 16)  # api_cpu: concurrent streams
    cpu_words: int = 200  # api_cpu: words (tokens) the model writes per response
    cpu_requests: int = 16  # api_cpu: requests per variant, interval and concurrency (1 per stream at least)
    cpu_rounds: int = 4  # api_cpu: rounds the requests are split into, every variant in each
    cpu_intervals: tuple[int, ...] = (1, 8)  # api_cpu: vLLM's stream_interval, per request
    cpu_idle_s: float = 5.0  # api_cpu: how long the API server's idle CPU is measured
    ws_calls: int = 20  # ws_agent: client-side function round trips per run
    ws_runs: int = 15  # ws_agent: runs per transport, interleaved (about 6 s a round of three)
    kv_agents: int = 16  # kv_hold: concurrent agent runs
    kv_tool_ms: int = 2000  # kv_hold: how long each tool call takes
    kv_calls: int = 3  # kv_hold: tool turns per agent (then the answer)
    kv_prefix_words: int = 240  # kv_hold: each agent's own words (~700 tiny-model tokens; tools ~200)
    kv_small_blocks: int = 192  # kv_hold: the evicting arm's KV cache, in blocks
    kv_large_blocks: int = 1024  # kv_hold: the control's, enough for every agent
    kv_max_model_len: int = 2048  # kv_hold: at most (small blocks - 1) x block size, as vLLM checks


QUICK = Mode(
    "quick",
    ("--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.15", "--block-size", "32",
     "--max-model-len", "2048"),
    block_size=32,
    c1_requests=20,
    concurrency=(4, 16, 32),
    requests_per_worker=3,
    conversations=3,
    long_text=200,
    micro_tokens=(128, 512, 2048),
    mcp_calls=100,
    early_ms=300,
)  # fmt: skip
SMOKE = Mode(
    "smoke",
    QUICK.vllm_flags,
    block_size=32,
    c1_requests=2,
    concurrency=(2,),
    requests_per_worker=1,
    conversations=1,
    long_text=20,
    micro_tokens=(64, 128),
    mcp_calls=3,
    early_ms=50,
    long_arg_tokens=(50, 200),
    long_arg_repeats=1,
    format_arg_tokens=(50, 200),
    cpu_concurrency=(1, 2),
    cpu_words=20,
    cpu_requests=1,
    cpu_rounds=1,
    cpu_intervals=(1, 8),
    cpu_idle_s=1.0,
    ws_calls=3,
    ws_runs=1,
    kv_agents=3,
    kv_tool_ms=200,
    kv_calls=2,
    kv_prefix_words=20,
    kv_small_blocks=16,
    kv_large_blocks=64,
    kv_max_model_len=480,
)
FULL = Mode(
    "full",
    ("--load-format", "dummy", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.85",
     "--block-size", "16", "--max-model-len", "8192"),
    block_size=16,
    c1_requests=50,
    concurrency=(4, 16, 32, 64),
    requests_per_worker=4,
    conversations=5,
    long_text=1000,
    micro_tokens=(256, 1024, 4096),
    mcp_calls=300,
    early_ms=300,
)  # fmt: skip
MODES = {m.name: m for m in (QUICK, SMOKE, FULL)}


@dataclass
class Stack:
    mode: Mode
    model: Path
    logs: Path
    vllm_url: str = ""
    mcp_url: str = ""  # the bench tool server over streamable HTTP
    litellm_url: str | None = None
    litellm_skipped: str | None = None
    vllm_pid: int = 0  # the API server's process (the engine runs in its children)
    vllm_extra: tuple[str, ...] = ()  # flags after the mode's (a later flag wins)
    _exit: ExitStack = field(default_factory=ExitStack)

    @property
    def stdio_command(self) -> list[str]:
        return [sys.executable, str(TOOLS_SERVER)]


@contextmanager
def running(
    mode: Mode, model: Path, logs: Path, *, litellm: str | None, vllm_extra: tuple[str, ...] = ()
) -> Iterator[Stack]:
    """The tool server, vLLM with the plugin (scripted outputs, tracing on, ``vllm_extra``
    after the mode's flags) and, when ``litellm`` names its command, a LiteLLM proxy in front
    of the same vLLM."""
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(mode, model, logs, vllm_extra=vllm_extra)
    with stack._exit:
        port = free_port()
        tools = start([sys.executable, str(TOOLS_SERVER), "--port", str(port)], logs / "tools.log")
        stack._exit.callback(stop, tools)
        wait_port(port, tools, 30, logs / "tools.log")
        stack.mcp_url = f"http://127.0.0.1:{port}/mcp"
        stack.vllm_url = _start_vllm(stack)
        if litellm is None:
            stack.litellm_skipped = "LiteLLM is not installed (see benchmarks/README.md)"
        else:
            stack.litellm_url = _start_litellm(stack, litellm)
        yield stack


def _start_vllm(stack: Stack) -> str:
    config = {
        "mcpServers": {
            "bench": {"url": stack.mcp_url},
            "bench_stdio": {"command": sys.executable, "args": [str(TOOLS_SERVER)]},
        }
    }
    config_path = stack.logs / "mcp.json"
    config_path.write_text(json.dumps(config, indent=2))
    port = free_port()
    env = {
        **os.environ,
        "VLLM_PLUGINS": "vllm_mcp_ext",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VLLM_MCP_TRACE": "1",
    }
    vllm = shutil.which("vllm", path=str(Path(sys.executable).parent)) or "vllm"
    cmd = [
        vllm, "serve", str(stack.model),
        "--served-model-name", MODEL_NAME,
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--tool-server", str(config_path),
        "--logits-processors", "benchmarks.scripted:ScriptedOutputs",
        "--enable-prompt-tokens-details",
        "--port", str(port),
        *stack.mode.vllm_flags,
        *stack.vllm_extra,
    ]  # fmt: skip
    proc = start(cmd, stack.logs / "vllm.log", env, cwd=REPO)
    stack._exit.callback(stop, proc)
    stack.vllm_pid = proc.pid
    wait_http(f"http://127.0.0.1:{port}/health", proc, 900, stack.logs / "vllm.log")
    return f"http://127.0.0.1:{port}"


LITELLM_KEY = "sk-bench"


def _start_litellm(stack: Stack, command: str) -> str:
    port = free_port()
    config = stack.logs / "litellm.yaml"
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL_NAME,
                        "litellm_params": {
                            "model": f"hosted_vllm/{MODEL_NAME}",
                            "api_base": f"{stack.vllm_url}/v1",
                            "api_key": "unused",
                        },
                    }
                ],
                "mcp_servers": {"bench": {"url": stack.mcp_url, "transport": "http"}},
                "general_settings": {"master_key": LITELLM_KEY},
                "litellm_settings": {"drop_params": True},
            },
            indent=2,
        )
    )  # JSON is YAML
    env = {**os.environ, "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true"}
    proc = start(
        [command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        stack.logs / "litellm.log",
        env,
    )
    stack._exit.callback(stop, proc)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, 300, stack.logs / "litellm.log")
    return f"http://127.0.0.1:{port}"


def find_litellm(explicit: str | None) -> str | None:
    """The `litellm` proxy command: given, beside this Python, on PATH, or in .venv-litellm."""
    if explicit:
        return explicit
    for candidate in (
        Path(sys.executable).parent / "litellm",
        REPO / ".venv-litellm" / "bin" / "litellm",
    ):
        if candidate.exists():
            return str(candidate)
    return shutil.which("litellm")
