"""Early tool execution: one model turn with two calls, the first to a tool that takes a fixed
time, the second to a fast one.

Where a call starts the moment its arguments are complete, the slow call runs while the model
still writes the second. Without early execution both would start when the turn ends and the
answer would wait for the slow one from there. The saving, from the plugin's trace of each
response: (turn end + the longest call) - (when the last call really ended). The build has no
switch to turn early execution off, so this is computed, not a second measured variant.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.common import PluginLoop, fetch_trace, percentile, table
from benchmarks.context import Context
from benchmarks.scripted import Plan


async def run(ctx: Context) -> dict[str, Any]:
    ms = ctx.mode.early_ms
    args = json.dumps([{"ms": ms}, {"a": 1, "b": 2}], separators=(",", ":"))
    plan = Plan(calls=(2,), tool="wait,add", args=args)
    plugin = PluginLoop(ctx.stack, ctx.http)
    await plugin(plan)
    latencies, hidden, started_early, first_turn, saved = [], [], 0, [], []
    calls = 0
    for _ in range(max(ctx.mode.c1_requests // 2, 1)):
        outcome = await plugin(plan)
        if not outcome.ok:
            continue
        trace = await fetch_trace(ctx.http, ctx.stack, outcome.response_id)
        turn = trace["turns"][0]
        latencies.append(outcome.seconds)
        hidden.append(trace["summary"]["mcp_hidden_s"])
        first_turn.append(turn["end"] - turn["start"])
        calls += len(trace["calls"])
        longest = max(c["end"] - c["start"] for c in trace["calls"])
        saved.append(max(turn["end"] + longest - max(c["end"] for c in trace["calls"]), 0.0))
        started_early += sum(c["start"] < turn["end"] for c in trace["calls"])
    result = {
        "tool_ms": ms,
        "calls": calls,
        "calls_started_before_turn_end": started_early,
        "latency_p50_s": percentile(latencies, 50),
        "first_turn_p50_s": percentile(first_turn, 50),
        "mcp_hidden_p50_s": percentile(hidden, 50),
        "saved_p50_s": percentile(saved, 50),
        "saved_share_p50": percentile([s / (lat + s) for s, lat in zip(saved, latencies, strict=True)], 50),
        "early_execution": started_early > 0,
    }
    table(
        f"early_exec: one turn calling a {ms} ms tool, then a fast one (p50)",
        ["latency ms", "first turn ms", "tool ms hidden behind the turn", "saved ms", "saved share",
         "calls started early"],
        [[result["latency_p50_s"] * 1e3, result["first_turn_p50_s"] * 1e3, result["mcp_hidden_p50_s"] * 1e3,
          result["saved_p50_s"] * 1e3, result["saved_share_p50"], f"{started_early}/{calls}"]],
    )  # fmt: skip
    if not started_early:
        print("early_exec: no call started before its turn ended (early execution not in this build)")
    return result
