"""Tool search with 121 tools: tool-definition tokens per request, and prefix reuse between turns,
all tools loaded against deferred behind ``tool_search``. In process, no server.

    python -m benchmarks.tool_search [--out docs/performance]

The tools are tests/e2e/servers/many_tools.py's, listed over an in-memory MCP session and turned
into the function definitions the plugin renders (`ToolSet`). One task, "Add 2 and 3.", runs as:

(a) **loaded**: all 121 tools in the prompt; the model calls ``add``, then answers;
(b) **deferred** (the plugin): only ``tool_search`` in the prompt; the model searches, the found
    definitions come back as the search's result, it calls ``add``, then answers;
(c) **deferred, re-rendered**: as (b), but the found tool is added to the prompt's tools list
    for the next turn (what a loop that "loads" tools into the tools list does).

Each turn's prompt is rendered with the tiny test model's chat template (the template the e2e
suite serves) and counted with two tokenizers: the tiny model's own (a small vocabulary: many
tokens per word) and o200k (``openai_harmony``'s gpt-oss encoding, a production BPE), so the
counts read like a real model's. Prefix reuse of turn k is the longest common token prefix of
its prompt and turn k-1's prompt + output, over the latter: the share vLLM's prefix cache can
serve. Writes ``tool_search.json``.

With ``--ttft`` it also starts ``vllm serve`` with the plugin and the tiny model (16,384-token
window, the 121-tool server configured over stdio) and times the first turn: a streamed
``/v1/responses`` request with ``max_output_tokens: 1``, from sending it to its last event (so:
listing from the registry's cache, render, prefill, one token), (a) against (b), interleaved,
each request with its own ``cache_salt`` so the prefix cache serves neither.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from mcp.client.client import Client
from openai_harmony import HarmonyEncodingName, load_harmony_encoding
from transformers import AutoTokenizer

from tests.e2e.servers.many_tools import build
from tests.support.tiny_model import build_tiny_model
from vllm_mcp_ext.loop.tool_search import SEARCH_FUNCTION, Deferred, ToolIndex, result_text
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet

ASK = "Add 2 and 3."


async def definitions() -> list[dict[str, Any]]:
    async with Client(build()) as client:
        tools = (await client.list_tools()).tools
    return ToolSet.build([ServerTools("many", tuple(tools))]).function_params()


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": call_id, "type": "function", "function": function}],
    }


def turns(all_tools: list[dict[str, Any]], variant: str) -> list[tuple[list[dict[str, Any]], list[Any], str]]:
    """Each turn's (messages, tools) and what the model writes (as the next message's text)."""
    user = [{"role": "user", "content": ASK}]
    add = call("c2", "add", {"a": 2, "b": 3})
    if variant == "loaded":
        return [(user, all_tools, "call"), ([*user, add, _result("c2", "5")], all_tools, "answer")]
    index = ToolIndex([Deferred(t, "many", t["function"]["name"]) for t in all_tools])
    found = index.search("add two integers")
    search = call("c1", "tool_search", {"query": "add two integers"})
    searched = [*user, search, _result("c1", result_text(found))]
    later = [SEARCH_FUNCTION] if variant == "deferred" else [SEARCH_FUNCTION, *(t.function for t in found)]
    return [
        (user, [SEARCH_FUNCTION], "call"),
        (searched, later, "call"),
        ([*searched, add, _result("c2", "5")], later, "answer"),
    ]


def _result(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def measure(tokenizer: Any, o200k: Any, variant: str, all_tools: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    previous: tuple[str, str] | None = None  # prompt, then what the model wrote
    for messages, tools, _ in turns(all_tools, variant):
        prompt = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=True
        )
        bare = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        row = {
            "prompt_tokens": len(tokenizer.encode(prompt, add_special_tokens=False)),
            "tool_tokens": len(tokenizer.encode(prompt, add_special_tokens=False))
            - len(tokenizer.encode(bare, add_special_tokens=False)),
            "prompt_tokens_o200k": len(o200k.encode(prompt, disallowed_special=())),
            "tool_tokens_o200k": len(o200k.encode(prompt, disallowed_special=()))
            - len(o200k.encode(bare, disallowed_special=())),
            "loaded_tools": len(tools),
        }
        if previous is not None:
            held = tokenizer.encode(previous[0] + previous[1], add_special_tokens=False)
            now = tokenizer.encode(prompt, add_special_tokens=False)
            common = next(
                (i for i, (a, b) in enumerate(zip(held, now, strict=False)) if a != b),
                min(len(held), len(now)),
            )
            row["prefix_reuse"] = round(common / len(held), 4)
        rows.append(row)
        written = tokenizer.apply_chat_template(
            [*messages, _next_message(variant, len(rows))], tools=tools, tokenize=False
        )
        previous = (prompt, written[len(prompt) :] if written.startswith(prompt) else "")
    return {
        "turns": rows,
        "tool_tokens_per_request": sum(r["tool_tokens"] for r in rows),
        "prompt_tokens_per_request": sum(r["prompt_tokens"] for r in rows),
        "tool_tokens_per_request_o200k": sum(r["tool_tokens_o200k"] for r in rows),
        "prompt_tokens_per_request_o200k": sum(r["prompt_tokens_o200k"] for r in rows),
        "first_turn_prompt_tokens": rows[0]["prompt_tokens"],
        "first_turn_prompt_tokens_o200k": rows[0]["prompt_tokens_o200k"],
    }


def _next_message(variant: str, turn: int) -> dict[str, Any]:
    """What the model writes in turn ``turn`` (1-based) of the variant."""
    if variant == "loaded":
        return call("c2", "add", {"a": 2, "b": 3}) if turn == 1 else {"role": "assistant", "content": "5."}
    plan = {
        1: call("c1", "tool_search", {"query": "add two integers"}),
        2: call("c2", "add", {"a": 2, "b": 3}),
    }
    return plan.get(turn, {"role": "assistant", "content": "5."})


def first_turn_seconds(url: str, deferred: bool, salt: str) -> float:
    tools: list[dict[str, Any]] = [
        {"type": "mcp", "server_label": "many", "require_approval": "never", "defer_loading": deferred}
    ]
    if deferred:
        tools.append({"type": "tool_search"})
    body = {
        "model": "tiny",
        "input": ASK,
        "tools": tools,
        "max_output_tokens": 1,
        "stream": True,
        "store": False,
        "cache_salt": salt,
    }
    started = time.perf_counter()
    with httpx.stream("POST", f"{url}/v1/responses", json=body, timeout=600) as answer:
        answer.raise_for_status()
        for _ in answer.iter_lines():
            pass
    return time.perf_counter() - started


def long_model(copy: Path) -> Path:
    """The tiny model with 16,384 positions (weights linked): 121 tools loaded do not fit 2,048."""
    tiny = build_tiny_model()
    copy.mkdir(parents=True, exist_ok=True)
    for item in tiny.iterdir():
        if item.name != "config.json" and not (copy / item.name).exists():
            (copy / item.name).symlink_to(item)
    config = json.loads((tiny / "config.json").read_text())
    config["max_position_embeddings"] = 16384
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def ttft(runs: int, logs: Path) -> dict[str, Any]:
    from tests.support.processes import free_port, start, stop, wait_http

    repo = Path(__file__).resolve().parents[1]
    server = repo / "tests" / "e2e" / "servers" / "many_tools.py"
    logs.mkdir(parents=True, exist_ok=True)
    config = logs / "mcp.json"
    config.write_text(
        json.dumps({"mcpServers": {"many": {"command": sys.executable, "args": [str(server)]}}})
    )
    port = free_port()
    env = {
        **os.environ,
        "VLLM_PLUGINS": "vllm_mcp_ext",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        str(Path(sys.executable).parent / "vllm"), "serve", str(long_model(logs / "tiny-long")),
        "--served-model-name", "tiny", "--dtype", "float32", "--enforce-eager",
        "--gpu-memory-utilization", "0.15", "--block-size", "32", "--max-model-len", "16384",
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--tool-server", str(config), "--port", str(port),
    ]  # fmt: skip
    proc = start(cmd, logs / "vllm.log", env, cwd=repo)  # on a copy whose positions reach 16,384
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc, 900, logs / "vllm.log")
        for deferred in (False, True):  # warm up: the listing, the compiled paths
            first_turn_seconds(url, deferred, "warm")
        times: dict[str, list[float]] = {"loaded": [], "deferred": []}
        for i in range(runs):
            for name in times:
                times[name].append(first_turn_seconds(url, name == "deferred", f"run-{i}-{name}"))
    finally:
        stop(proc)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "seconds": {name: [round(v, 4) for v in values] for name, values in times.items()},
        "median_s": {name: round(v, 4) for name, v in medians.items()},
        "deferred_over_loaded": round(medians["deferred"] / medians["loaded"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--ttft", action="store_true", help="also time the first turn on a vLLM server")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    all_tools = asyncio.run(definitions())
    tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_model()))
    o200k = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    variants = {
        v: measure(tokenizer, o200k, v, all_tools) for v in ("loaded", "deferred", "deferred_rerendered")
    }
    loaded, deferred = variants["loaded"], variants["deferred"]
    ratios = {
        "tool_tokens_per_request_deferred_over_loaded": round(
            deferred["tool_tokens_per_request"] / loaded["tool_tokens_per_request"], 4
        ),
        "tool_tokens_per_request_deferred_over_loaded_o200k": round(
            deferred["tool_tokens_per_request_o200k"] / loaded["tool_tokens_per_request_o200k"], 4
        ),
        "first_turn_prompt_deferred_over_loaded": round(
            deferred["first_turn_prompt_tokens"] / loaded["first_turn_prompt_tokens"], 4
        ),
    }
    result = {
        "meta": {
            "command": "python -m benchmarks.tool_search",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "tools": len(all_tools),
            "seconds": round(time.perf_counter() - started, 1),
            "load_before": os.getloadavg(),
        },
        "variants": variants,
        "ratios": ratios,
    }
    if args.ttft:
        result["first_turn"] = ttft(args.runs, args.out / "logs")
        result["meta"]["command"] += f" --ttft --runs {args.runs}"
        result["meta"]["load_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tool_search.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'variant':24} {'tool tok/req':>12} {'o200k':>8} {'turn-1 prompt':>14} {'o200k':>8}  prefix reuse"
    )
    for name, v in variants.items():
        reuse = ", ".join(str(t.get("prefix_reuse", "-")) for t in v["turns"])
        print(
            f"{name:24} {v['tool_tokens_per_request']:>12} {v['tool_tokens_per_request_o200k']:>8} "
            f"{v['first_turn_prompt_tokens']:>14} {v['first_turn_prompt_tokens_o200k']:>8}  {reuse}"
        )
    print(json.dumps(ratios))
    if "first_turn" in result:
        print("first turn (1 token), median s:", json.dumps(result["first_turn"]["median_s"]))


if __name__ == "__main__":
    main()
