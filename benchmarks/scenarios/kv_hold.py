"""KV held while tools run: how many prompt tokens concurrent agents prefill again after a slow
tool, with a KV cache too small to keep every waiting conversation's blocks, against a cache
large enough for all of them (the control).

Each arm starts its own vLLM with the plugin (``--num-gpu-blocks-override`` sizes the cache),
one arm at a time, with the bench tool server beside it. ``kv_agents`` agents start a
``kv_tool_ms`` apart divided by their number, so their turns interleave; each has its own long
prefix (``kv_prefix_words`` words) and makes ``kv_calls`` calls to the slow ``wait`` tool, one per
turn, then answers. Scripted outputs: every arm gets the same tokens.

Per later turn (after a tool result) the plugin's trace gives its prompt and cached tokens; what
the cache could have served is the full blocks the previous turn computed (`turn_prefix.reusable`),
so the difference is what the engine prefilled again because the blocks were evicted while the
tool ran. vLLM's own counters (/metrics) are read before and after each arm as a cross-check.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.common import check_output, fetch_trace, percentile, table
from benchmarks.context import Context
from benchmarks.kv_sessions import probe, shapes
from benchmarks.scenarios.turn_prefix import reusable
from benchmarks.scripted import Plan
from benchmarks.stack import MODEL_NAME, Mode, Stack, running

WORDS = ("the", "tool", "call", "result", "server", "model", "answer", "request", "add", "weather", "city",
         "number", "file", "read", "write", "list", "search", "open", "close", "time", "date", "value")  # fmt: skip
METRICS = {  # what the arm's delta reports -> (metric, label filter)
    "prompt_tokens": ("vllm:prompt_tokens_total", ""),
    "computed_tokens": ("vllm:prompt_tokens_by_source_total", 'source="local_compute"'),
    "cache_hit_tokens": ("vllm:prompt_tokens_by_source_total", 'source="local_cache_hit"'),
    "prefix_cache_queries": ("vllm:prefix_cache_queries_total", ""),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", ""),
    "preemptions": ("vllm:num_preemptions_total", ""),
}


@dataclass(frozen=True)
class Arm:
    name: str
    blocks: int
    what: str


def arms(mode: Mode) -> tuple[Arm, ...]:
    return (
        Arm("evicting", mode.kv_small_blocks, "KV cache smaller than the agents' prefixes"),
        Arm("fits", mode.kv_large_blocks, "KV cache holds every agent (control)"),
    )


def agent_plan(mode: Mode) -> Plan:
    # different arguments each turn: a call repeated with the same ones does not run again
    args = [{"ms": mode.kv_tool_ms + i} for i in range(mode.kv_calls)]
    return Plan(calls=(1,) * mode.kv_calls, tool="wait", args=json.dumps(args, separators=(",", ":")))


def agent_text(agent: int, plan: Plan, words: int) -> str:
    """The agent's own long prefix (the same in every arm: same tokens), then its plan."""
    pick = random.Random(agent)
    filler = " ".join(pick.choice(WORDS) for _ in range(words))
    return f"Agent {agent}. {filler} {plan.marker()}"


async def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    plan = agent_plan(mode)
    data: dict[str, Any] = {
        "agents": mode.kv_agents,
        "tool_ms": mode.kv_tool_ms,
        "calls_per_agent": mode.kv_calls,
        "prefix_words": mode.kv_prefix_words,
        "block_size": mode.block_size,
        "max_model_len": mode.kv_max_model_len,
        "arms": {},
    }
    for arm in arms(mode):
        flags = (
            "--num-gpu-blocks-override", str(arm.blocks),
            "--max-model-len", str(mode.kv_max_model_len),
        )  # fmt: skip
        logs = ctx.out / "logs" / f"kv_hold-{arm.name}"
        with running(mode, ctx.model, logs, litellm=None, vllm_extra=flags) as stack:
            result = await _arm(ctx.http, stack, mode, plan)
        data["arms"][arm.name] = {"blocks": arm.blocks, "kv_tokens": arm.blocks * mode.block_size,
                                  "what": arm.what, **result}  # fmt: skip
    data["engine_probe"] = await _probe(ctx, data["arms"])
    _print(data)
    return data


async def _probe(ctx: Context, measured: dict[str, Any]) -> dict[str, Any]:
    """vLLM's streaming-input sessions against a request per turn, in process, on the token
    counts the evicting arm measured (`benchmarks.kv_sessions`)."""
    mode = ctx.mode
    evicting = measured["evicting"]
    shared = max(measured["fits"]["first_turn_cached"])  # the system prompt and tools, whole blocks
    return await probe(
        ctx.model, mode.kv_small_blocks, mode.block_size, mode.kv_max_model_len, shapes(evicting["turn_tokens"]),
        shared, mode.kv_tool_ms / 1000, mode.kv_tool_ms / 1000 / mode.kv_agents,
        dtype=_flag(mode, "--dtype", "float32"), load_format=_flag(mode, "--load-format", "auto"),
        memory=float(_flag(mode, "--gpu-memory-utilization", "0.15")),
    )  # fmt: skip


def _flag(mode: Mode, name: str, default: str) -> str:
    """The value the mode's vLLM flags give ``name`` (the full mode's dummy weights, bf16, memory)."""
    flags = list(mode.vllm_flags)
    return flags[flags.index(name) + 1] if name in flags else default


async def _arm(http: httpx.AsyncClient, stack: Stack, mode: Mode, plan: Plan) -> dict[str, Any]:
    before = await _metrics(http, stack)
    spacing = mode.kv_tool_ms / 1000 / mode.kv_agents
    start = time.perf_counter()
    runs = await asyncio.gather(
        *(
            _agent(http, stack, plan, agent, agent * spacing, mode.kv_prefix_words)
            for agent in range(mode.kv_agents)
        )
    )
    wall = time.perf_counter() - start
    after = await _metrics(http, stack)
    problems = [r["problem"] for r in runs if r["problem"]]
    if problems:
        raise RuntimeError(f"{len(problems)} agent runs went off plan: {problems[:3]}")
    traces = [await fetch_trace(http, stack, r["response_id"]) for r in runs]
    turns = [_later_turns(trace["turns"], mode.block_size) for trace in traces]
    flat = [t for agent in turns for t in agent]
    reusable_total = sum(t["reusable"] for t in flat)
    again = sum(t["prefilled_again"] for t in flat)
    return {
        "wall_s": wall,
        "agent_run_p50_s": percentile([r["seconds"] for r in runs], 50),
        "later_turns": len(flat),
        "later_turns_missed": sum(t["prefilled_again"] > 0 for t in flat),
        "reusable_tokens": reusable_total,
        "cached_tokens": sum(min(t["cached"], t["reusable"]) for t in flat),
        "prefilled_again_tokens": again,
        "prefilled_again_share": again / reusable_total if reusable_total else float("nan"),
        "later_turn_p50_s": percentile([t["seconds"] for t in flat], 50),
        "later_turn_p95_s": percentile([t["seconds"] for t in flat], 95),
        "turn_tokens": [
            [[t["prompt_tokens"], t["output_tokens"]] for t in trace["turns"]] for trace in traces
        ],
        "first_turn_cached": [trace["turns"][0]["cached_tokens"] for trace in traces],
        "continued_turns": sum(t["continued"] for t in flat),
        "vllm_metrics": {name: after[name] - before[name] for name in METRICS},
        "per_agent_turns": turns,
    }


async def _agent(
    http: httpx.AsyncClient, stack: Stack, plan: Plan, agent: int, delay: float, words: int
) -> dict[str, Any]:
    await asyncio.sleep(delay)
    body = {
        "model": MODEL_NAME,
        "input": agent_text(agent, plan, words),
        "tools": [{"type": "mcp", "server_label": "bench", "require_approval": "never"}],
        "temperature": 0,
        "store": False,
    }
    start = time.perf_counter()
    reply = await http.post(f"{stack.vllm_url}/v1/responses", json=body)
    seconds = time.perf_counter() - start
    final = reply.json()
    problem = check_output(plan, final.get("output", [])) if reply.status_code == 200 else reply.text[:300]
    return {"seconds": seconds, "response_id": final.get("id"), "problem": problem}


def _later_turns(turns: list[dict[str, Any]], block: int) -> list[dict[str, Any]]:
    """Each turn after a tool result: its prompt, what the cache could serve, what it served."""
    out = []
    for prev, turn in itertools.pairwise(turns):
        best = reusable(prev["prompt_tokens"], prev["output_tokens"], turn["prompt_tokens"], block)
        out.append(
            {
                "prompt": turn["prompt_tokens"],
                "reusable": best,
                "cached": turn["cached_tokens"],
                "prefilled_again": max(best - turn["cached_tokens"], 0),
                "seconds": turn["end"] - turn["start"],
                "continued": turn["continued"],
            }
        )
    return out


async def _metrics(http: httpx.AsyncClient, stack: Stack) -> dict[str, float]:
    text = (await http.get(f"{stack.vllm_url}/metrics")).text
    return {name: _sum(text, metric, labels) for name, (metric, labels) in METRICS.items()}


def _sum(text: str, metric: str, labels: str) -> float:
    """The sum of a Prometheus metric's samples whose labels contain ``labels``."""
    pattern = re.compile(rf"^{re.escape(metric)}(\{{[^}}]*\}})?\s+(\S+)$", re.MULTILINE)
    return sum(float(m.group(2)) for m in pattern.finditer(text) if labels in (m.group(1) or ""))


def _print(data: dict[str, Any]) -> None:
    rows = []
    for name, arm in data["arms"].items():
        rows.append(
            [
                f"plugin, {name}", arm["kv_tokens"], f"{arm['later_turns_missed']}/{arm['later_turns']}",
                arm["reusable_tokens"], arm["prefilled_again_tokens"], arm["prefilled_again_share"],
                arm["later_turn_p50_s"] * 1e3, arm["later_turn_p95_s"] * 1e3, arm["wall_s"],
            ]
        )  # fmt: skip
    probe = data["engine_probe"]
    for name in ("per_turn_requests", "sessions"):
        arm = probe[name]
        if arm["stalled"]:
            rows.append(
                [f"engine, {name}", probe["kv_tokens"], "stalled", "", "", "", "", "", arm["after_s"]]
            )
            continue
        rows.append(
            [
                f"engine, {name}", probe["kv_tokens"], "", "", arm["prefilled_again_tokens"], "",
                arm["later_turn_p50_s"] * 1e3, arm["later_turn_p95_s"] * 1e3, arm["wall_s"],
            ]
        )  # fmt: skip
    table(
        f"kv_hold: {data['agents']} agents, {data['calls_per_agent']} calls each to a {data['tool_ms']} ms "
        f"tool (block {data['block_size']})",
        ["arm", "KV tokens", "turns that missed", "reusable", "prefilled again", "share",
         "later turn p50 ms", "p95 ms", "all agents s"],
        rows,
    )  # fmt: skip
