"""Early tool execution: one model turn with two calls to a tool that takes a fixed time.

Where a call starts the moment its arguments are complete, the rest of the turn (the second
call) is written while the first runs; the plugin's trace shows it as MCP time hidden behind
the model turn. Without early execution that hidden time is zero and the latency is the turn,
then the slower call, then the answer.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.common import PluginLoop, percentile, table
from benchmarks.context import Context
from benchmarks.scripted import Plan


async def run(ctx: Context) -> dict[str, Any]:
    ms = ctx.mode.early_ms
    plan = Plan(calls=(2,), tool="wait", args=json.dumps({"ms": ms}, separators=(",", ":")))
    plugin = PluginLoop(ctx.stack, ctx.http)
    await plugin(plan)
    latencies, hidden, started_early, first_turn = [], [], 0, []
    calls = 0
    for _ in range(max(ctx.mode.c1_requests // 2, 1)):
        outcome = await plugin(plan)
        if not outcome.ok:
            continue
        trace = (await ctx.http.get(f"{ctx.stack.vllm_url}/v1/mcp/traces/{outcome.response_id}")).json()
        turn = trace["turns"][0]
        latencies.append(outcome.seconds)
        hidden.append(trace["summary"]["mcp_hidden_s"])
        first_turn.append(turn["end"] - turn["start"])
        calls += len(trace["calls"])
        started_early += sum(c["start"] < turn["end"] for c in trace["calls"])
    result = {
        "tool_ms": ms,
        "calls": calls,
        "calls_started_before_turn_end": started_early,
        "latency_p50_s": percentile(latencies, 50),
        "first_turn_p50_s": percentile(first_turn, 50),
        "mcp_hidden_p50_s": percentile(hidden, 50),
        "early_execution": started_early > 0,
    }
    table(
        f"early_exec: one turn with two calls to a {ms} ms tool (p50)",
        ["latency ms", "first turn ms", "tool ms hidden behind the turn", "calls started early"],
        [[result["latency_p50_s"] * 1e3, result["first_turn_p50_s"] * 1e3, result["mcp_hidden_p50_s"] * 1e3,
          f"{started_early}/{calls}"]],
    )  # fmt: skip
    if not started_early:
        print("early_exec: no call started before its turn ended (early execution not in this build)")
    return result
