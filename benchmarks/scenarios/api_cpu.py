"""API-server CPU time per streamed token: the plugin's /v1/responses with MCP tools against
stock vLLM's /v1/chat/completions with the same tools as function tools, on the same server.

On a GPU the engine runs in its own process; the Python work per streamed token in the one
API-server process (parsing, events, SSE) is what bounds many streams. Here that process is
pinned to one core and the engine's processes to the others (every thread), so the API server's
CPU time (`psutil` ``cpu_times``, user + system) counts its own work and little of the
contention. The requests carry the same plan, so the scripted model writes the same tokens:

- ``responses_text``: /v1/responses, MCP tools offered, the model answers in ``cpu_words`` words;
- ``chat_text``: /v1/chat/completions, the same tools as function tools, the same answer (stock);
- ``responses_mcp``: /v1/responses, one MCP call (a second model turn), then the same answer;
- ``chat_final``: stock /v1/chat/completions, the same answer not streamed: the floor. vLLM's engine
  client still takes, detokenizes and counts every engine step's tokens, but makes no per-step
  output and the door does no per-token work, so no streaming door can cost less per token. Its
  ratio to ``chat_text`` bounds the ratio any streaming door can reach.

Each at vLLM's stream interval 1 and 8 (the request's ``stream_interval``: the engine sends a
stream's tokens 8 at a time after the first), the plugin against stock at the same interval.
Variants alternate, in ``cpu_rounds`` rounds (the order reversed every other round, the intervals
interleaved) at each concurrency; the ratio is the rounds pooled, with each round's ratio beside it
for the spread.
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
    mode = ctx.mode
    words = mode.cpu_words
    text_plan, call_plan = Plan(calls=(), text=words), Plan(calls=(1,), text=words)

    def variants(interval: int) -> dict[str, Request]:
        return {
            "responses_text": lambda: _responses(ctx, text_plan, interval),
            "chat_text": lambda: _chat(ctx, text_plan, tools, interval),
            "responses_mcp": lambda: _responses(ctx, call_plan, interval),
            "chat_final": lambda: _chat(ctx, text_plan, tools, interval, stream=False),
        }

    for interval in mode.cpu_intervals:  # warm up every path
        for request in variants(interval).values():
            await request()
    idle = await _idle_rate(api, mode.cpu_idle_s)
    results: dict[str, Any] = {
        "pinned": pinned, "words": words, "idle_cpu_per_s": idle, "rounds": mode.cpu_rounds,
        "interval": {str(n): {"concurrency": {}} for n in mode.cpu_intervals},
    }  # fmt: skip
    rows = []
    for c in mode.cpu_concurrency:
        each = max(mode.cpu_requests // (mode.cpu_rounds * c), 1)
        rounds: dict[int, list[dict[str, dict[str, Any]]]] = {n: [] for n in mode.cpu_intervals}
        for round_ in range(mode.cpu_rounds):
            for n in mode.cpu_intervals:  # the intervals interleaved too: the same load for both
                keys = list(variants(n))
                measured = {}
                for key in keys if round_ % 2 == 0 else keys[::-1]:
                    measured[key] = await _phase(api, variants(n)[key], c, each)
                rounds[n].append(measured)
        for n in mode.cpu_intervals:
            entry = _entry(rounds[n], idle)
            results["interval"][str(n)]["concurrency"][str(c)] = entry
            per_token, kinds = entry["us_per_token"], entry["per_token"]
            low, high = entry["text_ratio_rounds_range"]
            stock, ours = kinds["chat_text"], kinds["responses_text"]
            rows.append(
                [n, c, per_token["chat_text"], per_token["responses_text"], entry["text_ratio"],
                 f"{low:.2f}-{high:.2f}", per_token["responses_mcp"], entry["mcp_ratio"],
                 per_token["chat_final"], entry["floor_ratio"],
                 stock["system_us"], ours["system_us"], stock["writes"], ours["writes"]]
            )  # fmt: skip
    table(
        f"api_cpu: API-server CPU us per streamed token ({words}-word answers; pinned: {pinned['api']} vs "
        f"{pinned['engine']}; idle {idle * 1e3:.0f} ms CPU/s; {mode.cpu_rounds} rounds)",
        ["interval", "concurrency", "stock chat", "responses", "ratio", "per round", "responses + MCP call",
         "ratio", "floor: not streamed", "ratio", "system: stock", "responses", "writes/token: stock", "responses"],
        rows,
    )  # fmt: skip
    return results


def _entry(rounds: list[dict[str, dict[str, Any]]], idle: float) -> dict[str, Any]:
    """One interval and concurrency: the rounds pooled, and the text ratio of each round."""
    totals: dict[str, dict[str, float]] = {k: {} for k in rounds[0]}
    for measured in rounds:
        for key, phase in measured.items():
            for field, value in phase.items():
                totals[key][field] = totals[key].get(field, 0) + value
    per_token = {k: v["cpu_s"] / v["tokens"] * 1e6 for k, v in totals.items()}
    # less what the process burns idle (its event loop, stats) over the phase's wall time
    net = {k: (v["cpu_s"] - idle * v["wall_s"]) / v["tokens"] * 1e6 for k, v in totals.items()}
    per_round = [_ratio(m["responses_text"], m["chat_text"]) for m in rounds]
    per_kind = {
        k: {
            "user_us": v["user_s"] / v["tokens"] * 1e6,
            "system_us": v["system_s"] / v["tokens"] * 1e6,
            "writes": v["write_calls"] / v["tokens"],
            "bytes": v["write_bytes"] / v["tokens"],
        }
        for k, v in totals.items()
    }
    return {
        "per_token": per_kind,
        "variants": totals,
        "rounds": rounds,
        "us_per_token": per_token,
        "text_ratio": per_token["responses_text"] / per_token["chat_text"],
        "mcp_ratio": per_token["responses_mcp"] / per_token["chat_text"],
        "floor_ratio": per_token["chat_final"] / per_token["chat_text"],
        "text_ratio_rounds": per_round,
        "text_ratio_rounds_range": [min(per_round), max(per_round)],
        "us_per_token_less_idle": net,
        "text_ratio_less_idle": net["responses_text"] / net["chat_text"],
        "mcp_ratio_less_idle": net["responses_mcp"] / net["chat_text"],
    }


def _ratio(ours: dict[str, Any], stock: dict[str, Any]) -> float:
    return (ours["cpu_s"] / ours["tokens"]) / (stock["cpu_s"] / stock["tokens"])


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

    before, io_before, start = api.cpu_times(), api.io_counters(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    after, io_after, wall = api.cpu_times(), api.io_counters(), time.perf_counter() - start
    user, system = after.user - before.user, after.system - before.system
    return {
        "cpu_s": user + system, "user_s": user, "system_s": system, "tokens": sum(tokens), "wall_s": wall,
        "requests": len(tokens),
        # write(2)-family calls and their bytes (the SSE socket writes; zmq's sends are not among them)
        "write_calls": io_after.write_count - io_before.write_count,
        "write_bytes": io_after.write_chars - io_before.write_chars,
    }  # fmt: skip


async def _responses(ctx: Context, plan: Plan, interval: int = 1) -> int:
    body = {
        "model": MODEL_NAME,
        "input": user_text(plan),
        "tools": [{"type": "mcp", "server_label": "bench", "require_approval": "never"}],
        "temperature": 0,
        "stream": True,
        **_interval(interval),
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


async def _chat(
    ctx: Context, plan: Plan, tools: list[dict[str, Any]], interval: int = 1, *, stream: bool = True
) -> int:
    body: dict[str, Any] = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": user_text(plan)}],
        "tools": tools,
        "temperature": 0,
        "stream": stream,
        **_interval(interval),
    }
    url = f"{ctx.stack.vllm_url}/v1/chat/completions"
    if not stream:
        reply = await ctx.http.post(url, json=body)
        reply.raise_for_status()
        whole = reply.json()
        if (whole["choices"][0]["message"].get("content") or "").strip() != plan.final_text():
            raise RuntimeError(f"chat: unexpected message {whole['choices'][0]['message']!r:.300}")
        return int(whole["usage"]["completion_tokens"])
    body["stream_options"] = {"include_usage": True}
    async with ctx.http.stream("POST", url, json=body) as response:
        chunks = await sse_events(response)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    if text.strip() != plan.final_text():
        raise RuntimeError(f"chat: unexpected text {text!r:.300}")
    return int(next(c["usage"] for c in reversed(chunks) if c.get("usage"))["completion_tokens"])


def _interval(interval: int) -> dict[str, Any]:
    """vLLM's per-request ``stream_interval`` (it takes the larger of it and the server's
    ``--stream-interval``); left out at 1, the server's default, so that request is the plain one."""
    return {} if interval == 1 else {"stream_interval": interval}


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
