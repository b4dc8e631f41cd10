"""The benchmarks' quick mode runs from a checkout and writes valid JSON (tiny sizes; no timings
are checked). LiteLLM and plots are used when installed, and their absence is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = (
    "turn_prefix", "loop_vs_client", "overhead", "mcp_call", "early_exec", "long_args", "formats_long_args", "api_cpu",
    "ws_agent", "kv_hold",
)  # fmt: skip


def test_smoke_mode_runs_every_scenario_and_writes_json(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--mode", "smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,  # kv_hold starts two more servers and an engine
    )
    output = run.stdout + run.stderr
    failure = output.find("Traceback")  # the servers' request logs would bury it
    assert run.returncode == 0, output[failure : failure + 6000] if failure >= 0 else output[-6000:]
    for name in SCENARIOS:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["meta"]["mode"] == "smoke"
        assert "error" not in data[name], data[name]
    prefix = json.loads((tmp_path / "turn_prefix.json").read_text())["turn_prefix"]
    assert prefix["styles"]["spaced"]["a"]["ratio"] is not None
    loop = json.loads((tmp_path / "loop_vs_client.json").read_text())["loop_vs_client"]
    assert loop["one_call"]["latency_c1"]["a"]["errors"] == 0
    assert loop["one_call"]["latency_c1"]["b"]["errors"] == 0
    assert "LiteLLM: skipped" in output or "c" in loop["one_call"]["variants"]
    assert "plots: " in output
    long_args = json.loads((tmp_path / "long_args.json").read_text())["long_args"]
    assert [entry["tokens"] > 0 for entry in long_args["lengths"]] == [True, True]
    formats = json.loads((tmp_path / "formats_long_args.json").read_text())["formats_long_args"]
    assert {"hermes", "qwen3_coder", "mistral", "kimi_k2"} <= set(formats["formats"])
    api_cpu = json.loads((tmp_path / "api_cpu.json").read_text())["api_cpu"]
    for interval in ("1", "8"):  # vLLM's stream interval, the plugin and stock alike
        variants = api_cpu["interval"][interval]["concurrency"]["1"]["variants"]
        assert set(variants) == {"responses_text", "chat_text", "responses_mcp", "chat_final"}
        assert all(v["tokens"] > 0 for v in variants.values())
    ws_agent = json.loads((tmp_path / "ws_agent.json").read_text())["ws_agent"]
    assert ws_agent["round_trips"] == 3 and len(ws_agent["runs"]["websocket"]) == 1
    assert ws_agent["runs"]["websocket"][0]["continued_turns"] > 0  # the connection's memory
    kv = json.loads((tmp_path / "kv_hold.json").read_text())["kv_hold"]
    assert kv["arms"]["fits"]["prefilled_again_tokens"] == 0  # the control keeps every prefix
    assert kv["arms"]["evicting"]["prefilled_again_tokens"] > 0  # the small cache evicts while tools run
    # held sessions keep (most of) their blocks, or fill the cache and stall
    probe = kv["engine_probe"]
    sessions, per_turn = probe["sessions"], probe["per_turn_requests"]
    assert sessions["stalled"] or sessions["prefilled_again_tokens"] < per_turn["prefilled_again_tokens"], (
        probe
    )
