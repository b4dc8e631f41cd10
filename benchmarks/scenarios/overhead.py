"""What the plugin costs on top of the engine and the tools.

1. From the timestamps the plugin records (VLLM_MCP_TRACE=1): per response, wall time minus the
   time spent waiting for the engine and the MCP time outside model turns, per turn and per
   generated token (streamed, a long final answer).
2. A micro-benchmark of the streaming hot path alone, no engine: synthetic token streams through
   the plugin's `ResponsesParser` (the incremental hermes parser; `long_args` compares it with
   vLLM's), the plugin's turn builder, Responses events and SSE encoding; tokens per second on one core, at growing lengths (it must stay flat:
   linear total cost).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
from mcp import types

from benchmarks.common import PluginLoop, fetch_trace, percentile, table
from benchmarks.context import Context
from benchmarks.scenarios.api_cpu import _pin, _unpin
from benchmarks.scripted import Plan
from vllm_mcp_ext._compat import ChatCompletionRequest
from vllm_mcp_ext.engine.parser import ChatTemplateParser
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.events.sse import encode
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet
from vllm_mcp_ext.loop.turn import TurnBuilder
from vllm_mcp_ext.types.request import ResponsesRequest

NOTE_TOOL = types.Tool(
    name="add_note",
    description="Save a note.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)
NOTE_FUNCTION = {
    "type": "function",
    "function": {"name": "add_note", "description": "Save a note.", "parameters": NOTE_TOOL.input_schema},
}


async def run(ctx: Context) -> dict[str, Any]:
    # As in api_cpu: the API server on one core, the engine's processes (whose OpenMP threads
    # spin between steps on a CPU) on the others, so a turn's wall time is the plugin's own.
    api = psutil.Process(ctx.stack.vllm_pid)
    pinned = _pin(api)
    try:
        traced = {**await _traced(ctx), "pinned": pinned}
    finally:
        _unpin(api)
    micro = await micro_benchmark(ctx.stack.model, ctx.mode.micro_tokens)
    return {"traced": traced, "micro": micro}


async def _traced(ctx: Context) -> dict[str, Any]:
    plan = Plan(calls=(1, 1), tool="add", text=ctx.mode.long_text)
    plugin = PluginLoop(ctx.stack, ctx.http)
    await plugin(plan)
    summaries, renders = [], {"first": [], "continued": []}
    for _ in range(max(ctx.mode.c1_requests // 2, 1)):
        outcome = await plugin(plan)
        trace = await fetch_trace(ctx.http, ctx.stack, outcome.response_id)
        summaries.append(trace["summary"])
        for turn in trace["turns"]:  # render, continuation, parser setup: until generate() is called
            renders["continued" if turn["continued"] else "first"].append(turn["render_s"])
    turns = summaries[0]["turns"]
    tokens = summaries[0]["output_tokens"]

    def p50(key: str) -> float:
        return percentile([s[key] for s in summaries], 50)

    result = {
        "requests": len(summaries),
        "turns": turns,
        "output_tokens": tokens,
        "p50": {k: p50(k) for k in ("total_s", "engine_s", "mcp_s", "plugin_s", "hot_path_s", "render_s")},
        "plugin_ms_per_turn": p50("plugin_s") / turns * 1e3,
        "hot_path_us_per_token": p50("hot_path_s") / tokens * 1e6,
        "render_ms_per_turn": p50("render_s") / turns * 1e3,
        "turn_start_ms_p50": {k: percentile(v, 50) * 1e3 for k, v in renders.items()},
        "turn_start_ms_p50_all": percentile(renders["first"] + renders["continued"], 50) * 1e3,
        # what a turn costs apart from its tokens: render, continuation, parser setup, item events
        "per_turn_ms": percentile([(s["plugin_s"] - s["hot_path_s"]) / turns for s in summaries], 50) * 1e3,
        "plugin_share": p50("plugin_s") / p50("total_s"),
    }
    p = result["p50"]
    starts = result["turn_start_ms_p50"]
    print(
        f"overhead: turn start (render, continuation, parser setup) p50 {result['turn_start_ms_p50_all']:.2f} ms; "
        f"first turns {starts['first']:.2f} ms, continued turns {starts['continued']:.2f} ms"
    )
    table(
        f"overhead: plugin time from its own timestamps ({turns} turns, {tokens} tokens streamed, p50)",
        ["total ms", "engine ms", "MCP ms", "plugin ms", "plugin share", "plugin ms/turn",
         "render ms/turn", "per-turn ms (not per token)", "hot path us/token"],
        [[p["total_s"] * 1e3, p["engine_s"] * 1e3, p["mcp_s"] * 1e3, p["plugin_s"] * 1e3,
          result["plugin_share"], result["plugin_ms_per_turn"], result["render_ms_per_turn"],
          result["per_turn_ms"], result["hot_path_us_per_token"]]],
    )  # fmt: skip
    return result


# -- micro-benchmark --------------------------------------------------------------------------


def _synthetic_outputs(ids: list[int], pieces: list[str]) -> list[tuple[str, list[int], bool]]:
    """Stands in for the engine: a fixed token stream, one token per output."""
    last = len(ids) - 1
    return [(piece, [tid], i == last) for i, (tid, piece) in enumerate(zip(ids, pieces, strict=True))]


def _streams(tokenizer: Any, n: int) -> dict[str, list[int]]:
    words = " ".join(f"w{i % 97}" for i in range(n))
    text_ids = tokenizer.encode(words, add_special_tokens=False)[:n]
    call = '<tool_call>\n{"name": "add_note", "arguments": {"text": "' + words + '"}}\n</tool_call>'
    call_ids = tokenizer.encode(call, add_special_tokens=False)
    # keep the call whole: trim the argument text until the call has about n tokens
    while len(call_ids) > n and len(words) > 8:
        words = words[: int(len(words) * n / len(call_ids)) - 1].rstrip()
        call = '<tool_call>\n{"name": "add_note", "arguments": {"text": "' + words + '"}}\n</tool_call>'
        call_ids = tokenizer.encode(call, add_special_tokens=False)
    return {"text": text_ids, "tool call": call_ids}


async def micro_benchmark(model: Path, lengths: tuple[int, ...]) -> dict[str, Any]:
    from vllm.parser.parser_manager import ParserManager
    from vllm.tokenizers import get_tokenizer

    tokenizer = get_tokenizer(str(model))
    parser_cls = ParserManager.get_parser(
        tool_parser_name="hermes", enable_auto_tools=True, tokenizer=tokenizer
    )
    toolset = ToolSet.build([ServerTools("notes", (NOTE_TOOL,))])
    results: dict[str, Any] = {}
    rows = []
    for n in lengths:
        for kind, ids in _streams(tokenizer, n).items():
            pieces = [tokenizer.decode([i]) for i in ids]
            seconds = min([await _one_stream(parser_cls, tokenizer, ids, pieces, toolset) for _ in range(3)])
            parse_only = min([await _one_stream(parser_cls, tokenizer, ids, pieces, None) for _ in range(3)])
            entry = {
                "tokens": len(ids),
                "seconds": seconds,
                "tokens_per_s": len(ids) / seconds,
                "us_per_token": seconds / len(ids) * 1e6,
                "parser_us_per_token": parse_only / len(ids) * 1e6,
            }
            results.setdefault(kind, []).append(entry)
            rows.append(
                [kind, len(ids), entry["tokens_per_s"], entry["us_per_token"], entry["parser_us_per_token"]]
            )
    table(
        "overhead: streaming hot path on synthetic tokens, one core (best of 3)",
        ["stream", "tokens", "tokens/s", "us/token (all)", "us/token (parser only)"],
        rows,
    )
    return results


async def _one_stream(
    parser_cls: Any, tokenizer: Any, ids: list[int], pieces: list[str], toolset: ToolSet | None
) -> float:
    """Seconds for one synthetic turn: parser only, or parser + turn builder + events + SSE."""
    request = ChatCompletionRequest(
        model="bench", messages=[{"role": "user", "content": "hi"}], tools=[NOTE_FUNCTION], stream=True
    )  # type: ignore[list-item]
    vllm_parser = parser_cls(tokenizer, request.tools, chat_template_kwargs={}, model_config=None)
    parser = ChatTemplateParser(vllm_parser, request)
    stream = ResponseStream(ResponsesRequest(id="resp_bench", model="bench"))
    builder = TurnBuilder(stream, toolset, set(), "notes") if toolset is not None else None
    outputs = _synthetic_outputs(ids, pieces)
    sent = 0
    start = time.perf_counter()
    for text, token_ids, finished in outputs:
        for part in parser.feed(text, token_ids, [1, 2, 3], finished):
            if builder is not None:
                builder.feed(part)
                for event in stream.take():
                    sent += len(encode(event))
    if builder is not None:
        for part in parser.close():
            builder.feed(part)
        builder.close()
        for event in stream.take():
            sent += len(encode(event))
    return time.perf_counter() - start
