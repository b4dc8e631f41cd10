"""The same task three ways, interleaved: (a) plugin, (b) client loop, (c) LiteLLM.

Latency at concurrency 1 (p50, p95) and throughput at higher concurrency, as ratios to (a), for
two tasks: one tool call (two model turns: all three can do it) and three dependent sequential
calls (four model turns: LiteLLM cannot, see `LiteLLMLoop`; it is tried once and reported).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.common import ClientLoop, LiteLLMLoop, Outcome, PluginLoop, Runner, percentile, ratio, table
from benchmarks.context import Context
from benchmarks.scripted import Plan

TASKS = {"one_call": (1,), "three_sequential": (1, 1, 1)}


async def run(ctx: Context) -> dict[str, Any]:
    data: dict[str, Any] = {"litellm": ctx.stack.litellm_skipped or "measured where it can do the task"}
    async with ClientLoop(ctx.stack) as client_loop:
        for task, calls in TASKS.items():
            plan = Plan(calls=calls, tool="add")
            variants: dict[str, Runner] = {"a": PluginLoop(ctx.stack, ctx.http), "b": client_loop}
            names = {"a": PluginLoop.name, "b": ClientLoop.name}
            if ctx.stack.litellm_url:
                litellm = LiteLLMLoop(ctx.stack, ctx.http)
                probe = await litellm(plan)
                if probe.ok:
                    variants["c"], names["c"] = litellm, LiteLLMLoop.name
                else:
                    data[f"litellm_{task}"] = f"cannot do it: {probe.detail}"
                    print(f"loop_vs_client {task}: LiteLLM cannot do this task ({probe.detail}); left out")
            data[task] = await _compare(ctx, task, plan, variants, names)
    return data


async def _compare(
    ctx: Context, task: str, plan: Plan, variants: dict[str, Runner], names: dict[str, str]
) -> dict[str, Any]:
    for runner in variants.values():  # warm every path up
        for _ in range(2):
            await runner(plan)
    latency = await _latency(ctx, variants, plan)
    throughput = await _throughput(ctx, variants, plan)
    rows = []
    for key, name in names.items():
        lat = latency[key]
        rows.append(
            [f"({key}) {name}", lat["p50_s"], lat["p95_s"], ratio(lat["p50_s"], latency["a"]["p50_s"]),
             ratio(lat["p95_s"], latency["a"]["p95_s"]), lat["errors"]]
            + [ratio(throughput[c][key]["rps"], throughput[c]["a"]["rps"]) for c in ctx.mode.concurrency]
        )  # fmt: skip
    header = ["variant", "p50 s", "p95 s", "p50/(a)", "p95/(a)", "errors"]
    header += [f"req/s c={c} /(a)" for c in ctx.mode.concurrency]
    calls = sum(plan.calls)
    table(f"loop_vs_client {task}: {calls} MCP call(s) (streamable HTTP), streamed", header, rows)
    table(
        f"loop_vs_client {task}: throughput (tasks/s)",
        ["concurrency", *(f"({k})" for k in names)],
        [[c, *(throughput[c][k]["rps"] for k in names)] for c in ctx.mode.concurrency],
    )
    return {
        "task": {
            "calls_per_turn": list(plan.calls),
            "tool": "add",
            "transport": "streamable-http",
            "stream": True,
        },
        "variants": names,
        "latency_c1": latency,
        "throughput": {str(c): v for c, v in throughput.items()},
    }


async def _latency(ctx: Context, variants: dict[str, Runner], plan: Plan) -> dict[str, Any]:
    samples: dict[str, list[Outcome]] = {k: [] for k in variants}
    keys = list(variants)
    for i in range(ctx.mode.c1_requests):
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:  # rotate the order
            samples[key].append(await variants[key](plan))
    return {k: _summary(v) for k, v in samples.items()}


async def _throughput(ctx: Context, variants: dict[str, Runner], plan: Plan) -> dict[int, dict[str, Any]]:
    result: dict[int, dict[str, Any]] = {}
    keys = list(variants)
    for c in ctx.mode.concurrency:
        phases: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for round_ in range(2):  # two rounds, order reversed in the second
            for key in keys if round_ == 0 else keys[::-1]:
                phases[key].append(await _phase(variants[key], plan, c, ctx.mode.requests_per_worker))
        result[c] = {
            k: {
                "rps": sum(p["requests"] for p in v) / sum(p["seconds"] for p in v),
                "errors": sum(p["errors"] for p in v),
                "first_error": next((p["first_error"] for p in v if p["first_error"]), None),
                "p50_s": percentile([s for p in v for s in p["latencies"]], 50),
            }
            for k, v in phases.items()
        }
    return result


async def _phase(runner: Runner, plan: Plan, workers: int, each: int) -> dict[str, Any]:
    outcomes: list[Outcome] = []

    async def worker() -> None:
        for _ in range(each):
            try:
                outcomes.append(await runner(plan))
            except Exception as exc:  # a dropped connection under load is an error, not the end of the run
                outcomes.append(Outcome(False, 0.0, f"{type(exc).__name__}: {exc}"))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    seconds = time.perf_counter() - start
    ok = [o for o in outcomes if o.ok]
    failed = [o.detail for o in outcomes if not o.ok]
    return {
        "requests": len(ok),
        "errors": len(failed),
        "first_error": failed[0] if failed else None,
        "seconds": seconds,
        "latencies": [o.seconds for o in ok],
    }


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    ok = [o.seconds for o in outcomes if o.ok]
    errors = [o.detail for o in outcomes if not o.ok]
    return {
        "p50_s": percentile(ok, 50),
        "p95_s": percentile(ok, 95),
        "mean_s": sum(ok) / len(ok) if ok else float("nan"),
        "n": len(ok),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
