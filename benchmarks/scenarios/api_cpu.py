"""API-server CPU time per streamed token: the plugin's /v1/responses with MCP tools against
stock vLLM's /v1/chat/completions with the same tools as function tools, on the same server.

On a GPU the engine runs in its own process; the Python work per streamed token in the one
API-server process (parsing, events, SSE) is what bounds many streams. Here that process is
pinned to one core and the engine's processes to the others (every thread), so the API server's
CPU time (`psutil` ``cpu_times``, user + system) counts its own work and little of the
contention. The requests carry the same plan, so the scripted model writes the same tokens:

- ``responses_text``: /v1/responses, MCP tools offered, the model answers in ``cpu_words`` words;
- ``chat_text``: /v1/chat/completions, the same tools as function tools, the same answer (stock);
- ``responses_mcp``: /v1/responses, one MCP call (a second model turn), then the same answer.

Variants alternate (two rounds, order reversed in the second) at each concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil

from benchmarks.common import ClientLoop, sse_events, table, user_text
from benchmarks.context import Context
from benchmarks.scripted import Plan
from benchmarks.stack import MODEL_NAME

Request = Callable[[], Awaitable[int]]  # one streamed request; returns its output tokens


async def run(ctx: Context) -> dict[str, Any]:
    api = psutil.Process(ctx.stack.vllm_pid)
    pinned = _pin(api)
    try:
        async with ClientLoop(ctx.stack) as client:
            return await _measure(ctx, api, client.tools, pinned)
    finally:
        _unpin(api)


async def _measure(
    ctx: Context, api: psutil.Process, tools: list[dict[str, Any]], pinned: dict[str, Any]
) -> dict[str, Any]:
    words = ctx.mode.cpu_words
    text_plan, call_plan = Plan(calls=(), text=words), Plan(calls=(1,), text=words)
    variants: dict[str, Request] = {
        "responses_text": lambda: _responses(ctx, text_plan),
        "chat_text": lambda: _chat(ctx, text_plan, tools),
        "responses_mcp": lambda: _responses(ctx, call_plan),
    }
    for request in variants.values():  # warm up every path
        await request()
    idle = await _idle_rate(api, ctx.mode.cpu_idle_s)
    results: dict[str, Any] = {"pinned": pinned, "words": words, "idle_cpu_per_s": idle, "concurrency": {}}
    rows = []
    for c in ctx.mode.cpu_concurrency:
        totals = {k: {"cpu_s": 0.0, "tokens": 0, "wall_s": 0.0, "requests": 0} for k in variants}
        keys = list(variants)
        for round_ in range(2):
            for key in keys if round_ == 0 else keys[::-1]:
                phase = await _phase(api, variants[key], c, max(ctx.mode.cpu_requests // (2 * c), 2))
                for field, value in phase.items():
                    totals[key][field] += value
        per_token = {k: v["cpu_s"] / v["tokens"] * 1e6 for k, v in totals.items()}
        # less what the process burns idle (its event loop, stats) over the phase's wall time
        net = {k: (v["cpu_s"] - idle * v["wall_s"]) / v["tokens"] * 1e6 for k, v in totals.items()}
        entry = {
            "variants": totals,
            "us_per_token": per_token,
            "text_ratio": per_token["responses_text"] / per_token["chat_text"],
            "mcp_ratio": per_token["responses_mcp"] / per_token["chat_text"],
            "us_per_token_less_idle": net,
            "text_ratio_less_idle": net["responses_text"] / net["chat_text"],
            "mcp_ratio_less_idle": net["responses_mcp"] / net["chat_text"],
        }
        results["concurrency"][str(c)] = entry
        rows.append(
            [c, per_token["chat_text"], per_token["responses_text"], entry["text_ratio"],
             per_token["responses_mcp"], entry["mcp_ratio"], net["chat_text"], net["responses_text"],
             entry["text_ratio_less_idle"]]
        )  # fmt: skip
    table(
        f"api_cpu: API-server CPU us per streamed token ({words}-word answers; pinned: {pinned['api']} vs "
        f"{pinned['engine']}; idle {idle * 1e3:.0f} ms CPU/s)",
        ["concurrency", "stock chat", "responses", "ratio", "responses + MCP call", "ratio",
         "stock less idle", "responses less idle", "ratio"],
        rows,
    )  # fmt: skip
    return results


async def _idle_rate(api: psutil.Process, seconds: float) -> float:
    """CPU seconds per second the API server spends with no request running."""
    before, start = api.cpu_times(), time.perf_counter()
    await asyncio.sleep(seconds)
    after, wall = api.cpu_times(), time.perf_counter() - start
    return ((after.user - before.user) + (after.system - before.system)) / wall


async def _phase(api: psutil.Process, request: Request, workers: int, each: int) -> dict[str, Any]:
    tokens: list[int] = []

    async def worker() -> None:
        for _ in range(each):
            tokens.append(await request())

    before, start = api.cpu_times(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    after, wall = api.cpu_times(), time.perf_counter() - start
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"cpu_s": cpu, "tokens": sum(tokens), "wall_s": wall, "requests": len(tokens)}


async def _responses(ctx: Context, plan: Plan) -> int:
    body = {
        "model": MODEL_NAME,
        "input": user_text(plan),
        "tools": [{"type": "mcp", "server_label": "bench", "require_approval": "never"}],
        "temperature": 0,
        "stream": True,
    }
    async with ctx.http.stream("POST", f"{ctx.stack.vllm_url}/v1/responses", json=body) as response:
        events = await sse_events(response)
    final = next((e["response"] for e in reversed(events) if "response" in e), {})
    texts = [
        c.get("text", "") for o in final.get("output", []) if o.get("type") == "message" for c in o["content"]
    ]
    if not texts or texts[-1].strip() != plan.final_text():
        raise RuntimeError(f"responses: unexpected output {final.get('output')!r:.300}")
    return int(final["usage"]["output_tokens"])


async def _chat(ctx: Context, plan: Plan, tools: list[dict[str, Any]]) -> int:
    body = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": user_text(plan)}],
        "tools": tools,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with ctx.http.stream("POST", f"{ctx.stack.vllm_url}/v1/chat/completions", json=body) as response:
        chunks = await sse_events(response)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    if text.strip() != plan.final_text():
        raise RuntimeError(f"chat: unexpected text {text!r:.300}")
    return int(next(c["usage"] for c in reversed(chunks) if c.get("usage"))["completion_tokens"])


# -- pinning ----------------------------------------------------------------------------------


def _pin(api: psutil.Process) -> dict[str, Any]:
    """The API server's threads on the first allowed core, its children's on the others."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return {"api": cores, "engine": cores, "note": "one core: not pinned"}
    api_cores, engine_cores = {cores[0]}, set(cores[1:])
    _set_threads(api.pid, api_cores)
    children = api.children(recursive=True)
    for child in children:
        _set_threads(child.pid, engine_cores)
    return {"api": sorted(api_cores), "engine": sorted(engine_cores), "engine_processes": len(children)}


def _unpin(api: psutil.Process) -> None:
    cores = os.sched_getaffinity(0)
    for process in [api, *api.children(recursive=True)]:
        _set_threads(process.pid, cores)


def _set_threads(pid: int, cores: set[int]) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # a thread that just ended
            os.sched_setaffinity(int(tid), cores)
