"""An agent run of client-side function round trips over HTTP and over WebSocket.

One run: the model calls a function tool (the client runs it) ``ws_calls`` times, one call per
response, then answers; each call's output goes back as the next response's input with
``previous_response_id``. Over HTTP every round trip is a new streamed ``POST /v1/responses``
(the store read, the full render of the conversation); over WebSocket (OpenAI's WebSocket mode)
each run uses one connection, and each next response continues the conversation, and the tokens
the engine holds, from the connection's memory. Same server, same plan so the same tokens, runs
interleaved; WebSocket with the default ``store: true`` and with ``store: false``. The turn
overhead around the engine: the run's wall time minus the time its turns waited for the engine
(the plugin's trace of each response).

The clients are as cheap as an SDK's: the WebSocket client does not offer per-message compression
(the ``openai`` SDK's own ``responses.connect`` passes ``compression=None``; uvicorn would accept
it and then deflate every event), and httpx's per-request log line is off while the scenario runs
(the bench process logs INFO through a rich handler; an SDK user's httpx logs nowhere). Each run
also records the client process's own CPU time, part of the overhead as measured.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import psutil
from websockets.asyncio.client import connect

from benchmarks.common import fetch_trace, percentile, ratio, sse_events, table, user_text
from benchmarks.context import Context
from benchmarks.scripted import Plan
from benchmarks.stack import MODEL_NAME

ADD: dict[str, Any] = {
    "type": "function",
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}
_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def _bodies(plan: Plan, store: bool = True) -> tuple[dict[str, Any], Any]:
    first = {"model": MODEL_NAME, "input": user_text(plan), "tools": [ADD], "temperature": 0, "store": store}

    def next_body(previous: dict[str, Any]) -> dict[str, Any] | None:
        calls = [o for o in previous["output"] if o["type"] == "function_call"]
        if not calls:
            return None
        outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "3"} for c in calls]
        return {**first, "input": outputs, "previous_response_id": previous["id"]}

    return first, next_body


async def _http_run(ctx: Context, plan: Plan) -> tuple[float, list[dict[str, Any]]]:
    first, next_body = _bodies(plan)
    url = f"{ctx.stack.vllm_url}/v1/responses"
    finals: list[dict[str, Any]] = []
    body: dict[str, Any] | None = first
    start = time.perf_counter()
    while body is not None:
        async with ctx.http.stream("POST", url, json={**body, "stream": True}) as reply:
            events = await sse_events(reply)
        finals.append(_final(events))
        body = next_body(finals[-1])
    return time.perf_counter() - start, finals


async def _ws_run(
    ctx: Context, plan: Plan, store: bool = True, compression: str | None = None
) -> tuple[float, list[dict[str, Any]]]:
    first, next_body = _bodies(plan, store)
    url = ctx.stack.vllm_url.replace("http://", "ws://") + "/v1/responses"
    finals: list[dict[str, Any]] = []
    body: dict[str, Any] | None = first
    start = time.perf_counter()
    # as the openai SDK connects (max_size None, so compression None): no permessage-deflate
    async with connect(url, max_size=None, compression=compression) as socket:
        while body is not None:
            await socket.send(json.dumps({"type": "response.create", **body}))
            events = []
            while not events or events[-1]["type"] not in _TERMINAL:
                events.append(json.loads(await socket.recv()))
            finals.append(_final(events))
            body = next_body(finals[-1])
    return time.perf_counter() - start, finals


async def _ws_run_unstored(ctx: Context, plan: Plan) -> tuple[float, list[dict[str, Any]]]:
    """WebSocket mode as OpenAI suggests it for speed: ``store: false``, the connection's memory
    alone carries the run (no store write either)."""
    return await _ws_run(ctx, plan, store=False)


async def _ws_run_deflate(ctx: Context, plan: Plan) -> tuple[float, list[dict[str, Any]]]:
    """``store: false`` with a client that offers per-message compression (the ``websockets``
    library's default, not the SDK's): the server deflates every event, the client inflates it."""
    return await _ws_run(ctx, plan, store=False, compression="deflate")


VARIANTS = {
    "http": _http_run,
    "websocket": _ws_run,
    "websocket_store_false": _ws_run_unstored,
    "websocket_store_false_deflate": _ws_run_deflate,
}


def _final(events: list[dict[str, Any]]) -> dict[str, Any]:
    last = events[-1] if events else {}
    if last.get("type") != "response.completed":
        raise RuntimeError(f"a round trip did not complete: {json.dumps(last)[:400]}")
    response: dict[str, Any] = last["response"]
    return response


async def _measure(ctx: Context, run: Any, plan: Plan) -> dict[str, Any]:
    server = psutil.Process(ctx.stack.vllm_pid)  # the API server (the engine runs in its children)
    cpu, served = time.process_time(), server.cpu_times()
    seconds, finals = await run(ctx, plan)
    client_cpu = time.process_time() - cpu
    after = server.cpu_times()
    server_cpu = after.user + after.system - served.user - served.system
    if len(finals) != sum(plan.calls) + 1:
        raise RuntimeError(f"{len(finals)} responses, planned {sum(plan.calls) + 1}")
    texts = [c.get("text", "") for o in finals[-1]["output"] if o["type"] == "message" for c in o["content"]]
    if not texts or texts[-1].strip() != plan.final_text():
        raise RuntimeError(f"final text {texts[-1:]!r}, planned {plan.final_text()!r}")
    traces = [await fetch_trace(ctx.http, ctx.stack, f["id"]) for f in finals]
    turns = [t for trace in traces for t in trace["turns"]]
    engine = sum(t["engine_s"] for t in turns)
    return {
        "seconds": seconds,
        "engine_s": engine,
        "overhead_s": seconds - engine,
        "client_cpu_s": client_cpu,  # the benchmark client's own CPU in the run (in the overhead)
        "server_cpu_s": server_cpu,  # the API-server process's CPU in the run (engine client included)
        "render_s": sum(t["render_s"] for t in turns),  # the prompt's render and tokenizing
        "hot_path_s": sum(t["plugin_s"] for t in turns),  # handling the engine's outputs
        "continued_turns": sum(t["continued"] for t in turns),
        "turns": len(turns),
        "prompt_tokens": sum(t["prompt_tokens"] for t in turns),
        "output_tokens": sum(t["output_tokens"] for t in turns),
    }


async def run(ctx: Context) -> dict[str, Any]:
    quiet = logging.getLogger("httpx")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # an SDK client's httpx logs nowhere; the bench's rich handler costs ms
    try:
        return await _run(ctx)
    finally:
        quiet.setLevel(level)


async def _run(ctx: Context) -> dict[str, Any]:
    plan = Plan(calls=(1,) * ctx.mode.ws_calls, tool="add", args='{"a":1,"b":2}')
    for variant in VARIANTS.values():  # warm every path up
        await _measure(ctx, variant, plan)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for _ in range(ctx.mode.ws_runs):  # interleaved
        for name, variant in VARIANTS.items():
            runs[name].append(await _measure(ctx, variant, plan))
    summary = {name: _summary(values) for name, values in runs.items()}
    result = {
        "round_trips": ctx.mode.ws_calls,
        "runs": runs,
        "summary": summary,
        "ratio_to_http": {
            name: {
                "run_p50": ratio(summary[name]["seconds_p50"], summary["http"]["seconds_p50"]),
                "overhead_p50": ratio(summary[name]["overhead_p50"], summary["http"]["overhead_p50"]),
                # the spread: each round's overhead against the HTTP run of the same round
                "overhead_by_round": _spread(
                    [
                        ratio(v["overhead_s"], h["overhead_s"])
                        for v, h in zip(runs[name], runs["http"], strict=True)
                    ]
                ),
            }
            for name in VARIANTS
        },
    }
    table(
        f"ws_agent: {ctx.mode.ws_calls} client-side function round trips per run (p50 of {ctx.mode.ws_runs})",
        ["transport", "run s", "engine s", "overhead s", "client CPU s", "server CPU s", "turns continued",
         "overhead / HTTP's"],
        [
            [name, s["seconds_p50"], s["engine_p50"], s["overhead_p50"], s["client_cpu_p50"], s["server_cpu_p50"],
             s["continued"],
             ratio(s["overhead_p50"], summary["http"]["overhead_p50"])]
            for name, s in summary.items()
        ],
    )  # fmt: skip
    return result


def _spread(values: list[float]) -> dict[str, float]:
    return {f"p{p}": percentile(values, p) for p in (10, 25, 50, 75, 90)}


def _summary(values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seconds_p50": percentile([v["seconds"] for v in values], 50),
        "engine_p50": percentile([v["engine_s"] for v in values], 50),
        "overhead_p50": percentile([v["overhead_s"] for v in values], 50),
        "overhead_p25": percentile([v["overhead_s"] for v in values], 25),
        "overhead_p75": percentile([v["overhead_s"] for v in values], 75),
        "client_cpu_p50": percentile([v["client_cpu_s"] for v in values], 50),
        "server_cpu_p50": percentile([v["server_cpu_s"] for v in values], 50),
        "render_p50": percentile([v["render_s"] for v in values], 50),
        "hot_path_p50": percentile([v["hot_path_s"] for v in values], 50),
        "continued": f"{sum(v['continued_turns'] for v in values)}/{sum(v['turns'] for v in values)}",
    }
