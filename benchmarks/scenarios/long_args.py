"""Long tool-call arguments: what the streaming path costs per token as the argument grows.

In process, no server: a synthetic hermes tool call whose argument is about N tokens of the tiny
model's tokenizer, fed one token per engine output through the plugin's `ChatTemplateParser` with
the incremental hermes parser (``engine/hermes.py``) and with vLLM's ``Hermes2ProToolParser``
(what stock chat completions run), parser alone and the whole hot path (parser, turn builder,
Responses events, SSE encoding). The variants are interleaved and each keeps its best of a few
runs, so on a busy machine the ratio side by side in one run still means something.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import table
from benchmarks.context import Context
from benchmarks.scenarios.overhead import NOTE_FUNCTION, NOTE_TOOL
from vllm_mcp_ext._compat import ChatCompletionRequest
from vllm_mcp_ext.engine.parser import ChatTemplateParser
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.events.sse import encode
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet
from vllm_mcp_ext.loop.turn import TurnBuilder
from vllm_mcp_ext.types.request import ResponsesRequest

VARIANTS = {
    "incremental": (True, False),
    "vllm": (False, False),
    "incremental_hot_path": (True, True),
    "vllm_hot_path": (False, True),
}


async def run(ctx: Context) -> dict[str, Any]:
    return measure(ctx.model, ctx.mode.long_arg_tokens, ctx.mode.long_arg_repeats)


def measure(model: Path, lengths: tuple[int, ...], repeats: int) -> dict[str, Any]:
    from vllm.parser.parser_manager import ParserManager
    from vllm.tokenizers import get_tokenizer

    tokenizer = get_tokenizer(str(model))
    parser_cls = ParserManager.get_parser(
        tool_parser_name="hermes", enable_auto_tools=True, tokenizer=tokenizer
    )
    toolset = ToolSet.build([ServerTools("notes", (NOTE_TOOL,))])
    rows, results = [], []
    for n in lengths:
        ids, pieces, argument_tokens = _call_tokens(tokenizer, n)
        best = {name: float("inf") for name in VARIANTS}
        for _ in range(repeats):
            for name, (incremental, hot_path) in VARIANTS.items():  # interleaved
                seconds = _one_turn(
                    parser_cls, tokenizer, ids, pieces, incremental, toolset if hot_path else None
                )
                best[name] = min(best[name], seconds)
        us = {name: seconds / len(ids) * 1e6 for name, seconds in best.items()}
        entry = {
            "argument_tokens": argument_tokens,
            "tokens": len(ids),
            "us_per_token": us,
            "parser_ratio": us["incremental"] / us["vllm"],
            "hot_path_ratio": us["incremental_hot_path"] / us["vllm_hot_path"],
        }
        results.append(entry)
        rows.append(
            [argument_tokens, us["incremental"], us["vllm"], entry["parser_ratio"], us["incremental_hot_path"],
             us["vllm_hot_path"], entry["hot_path_ratio"]]
        )  # fmt: skip
    table(
        f"long_args: us per token of one tool call, one token per delta (best of {repeats}, interleaved)",
        ["arg tokens", "incremental", "vLLM hermes", "ratio", "hot path, incr.", "hot path, vLLM", "ratio"],
        rows,
    )
    return {"repeats": repeats, "lengths": results}


def _call_tokens(tokenizer: Any, n: int) -> tuple[list[int], list[str], int]:
    """A call whose argument text is about ``n`` tokens; its ids and each token's text."""
    words = " ".join(f"w{i % 97}" for i in range(n))
    while len(tokenizer.encode(words, add_special_tokens=False)) > n:
        words = words[: int(len(words) * 0.98)].rstrip()
    argument_tokens = len(tokenizer.encode(words, add_special_tokens=False))
    body = json.dumps({"name": "add_note", "arguments": {"text": words}})
    ids = tokenizer.encode(f"<tool_call>\n{body}\n</tool_call>", add_special_tokens=False)
    return ids, [tokenizer.decode([i]) for i in ids], argument_tokens


def _one_turn(
    parser_cls: Any,
    tokenizer: Any,
    ids: list[int],
    pieces: list[str],
    incremental: bool,
    toolset: ToolSet | None,
) -> float:
    """Seconds for one turn: parser only, or parser + turn builder + events + SSE."""
    request = ChatCompletionRequest(
        model="bench", messages=[{"role": "user", "content": "hi"}], tools=[NOTE_FUNCTION], stream=True
    )  # type: ignore[list-item]
    vllm_parser = parser_cls(tokenizer, request.tools, chat_template_kwargs={}, model_config=None)
    parser = ChatTemplateParser(vllm_parser, request, incremental=incremental)
    stream = ResponseStream(ResponsesRequest(id="resp_bench", model="bench"))
    builder = TurnBuilder(stream, toolset, set(), "notes") if toolset is not None else None
    last = len(ids) - 1
    sent = 0
    start = time.perf_counter()
    for i, (piece, token) in enumerate(zip(pieces, ids, strict=True)):
        for part in parser.feed(piece, [token], [1, 2, 3], i == last):
            if builder is not None:
                builder.feed(part)
                for event in stream.take():
                    sent += len(encode(event))
    for part in parser.close():
        if builder is not None:
            builder.feed(part)
    if builder is not None:
        builder.close()
        for event in stream.take():
            sent += len(encode(event))
    return time.perf_counter() - start
