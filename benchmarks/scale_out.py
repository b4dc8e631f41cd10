"""Prefix reuse across two replicas, with and without routing by the response's affinity headers
(docs/scale-out.md).

    python -m benchmarks.scale_out [--out docs/performance] [--conversations 6] [--turns 6]

Two ``vllm serve`` replicas of the tiny test model with the plugin, prefix caching on (block 32),
one shared response store (a SQLite file: both run on this machine). Multi-turn conversations
over ``/v1/responses``: each turn asks a new question with ``previous_response_id`` and an MCP
tool the model calls, so every turn's prompt is the whole conversation so far. The router is the
benchmark's own, a routing decision per request as a proxy would make it:

(a) **round-robin**: request i goes to replica i mod 2 (a plain load balancer);
(b) **by key**: a request that continues a conversation goes where the conversation's key
    (``x-vllm-mcp-session``, sent back by the client) was last served (``x-vllm-mcp-replica``);
    a new conversation goes round-robin.

Prefix reuse = cached prompt tokens / prompt tokens over every turn after the first (the
responses' ``usage.input_tokens_details.cached_tokens``), and the replicas' own
``vllm:prefix_cache_hits`` / ``vllm:prefix_cache_queries`` counters from ``/metrics``. The two
variants run interleaved, a round each, with conversations of their own (a nonce in the first
question, so no variant reuses another's prefixes beyond the shared tools). Writes
``scale_out.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, start, stop, wait_http
from tests.support.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SESSION, REPLICA = "x-vllm-mcp-session", "x-vllm-mcp-replica"
TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
QUESTIONS = ("What is 2 plus 3?", "And 4 plus 5?", "Now add 6 and 7.", "What is 10 plus 20?")


class Router:
    """Which replica a request goes to."""

    def __init__(self, urls: list[str], by_key: bool):
        self.urls, self.by_key = urls, by_key
        self._next = itertools.cycle(range(len(urls)))
        self._where: dict[str, str] = {}  # conversation key -> replica URL (from the headers)
        self._url_of: dict[str, str] = {}  # replica name -> URL

    def pick(self, key: str | None) -> str:
        if self.by_key and key is not None and key in self._where:
            return self._where[key]
        return self.urls[next(self._next)]

    def learn(self, url: str, headers: httpx.Headers) -> None:
        self._url_of[headers[REPLICA]] = url
        self._where[headers[SESSION]] = self._url_of[headers[REPLICA]]


async def conversation(
    http: httpx.AsyncClient, router: Router, nonce: str, turns: int
) -> list[dict[str, Any]]:
    """One conversation's turns: where each ran, its prompt and cached tokens."""
    rows: list[dict[str, Any]] = []
    previous: str | None = None
    key: str | None = None
    for turn in range(turns):
        url = router.pick(key)
        question = QUESTIONS[turn % len(QUESTIONS)]
        body: dict[str, Any] = {
            "model": "tiny",
            "input": f"{nonce} {question}" if turn == 0 else question,
            "tools": TOOLS,
            "temperature": 0,
            "max_output_tokens": 48,
        }
        headers = {SESSION: key} if key else {}
        if previous:
            body["previous_response_id"] = previous
        answer = await http.post(f"{url}/v1/responses", json=body, headers=headers)
        answer.raise_for_status()
        router.learn(url, answer.headers)
        response = answer.json()
        previous, key = response["id"], answer.headers[SESSION]
        usage = response["usage"]
        rows.append(
            {
                "replica": url,
                "input_tokens": usage["input_tokens"],
                "cached_tokens": (usage.get("input_tokens_details") or {}).get("cached_tokens", 0),
            }
        )
    return rows


async def metrics(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    text = (await http.get(f"{url}/metrics")).text
    found: dict[str, float] = {}
    for name in ("prefix_cache_hits", "prefix_cache_queries"):
        values = re.findall(rf"^vllm:{name}_total\{{[^}}]*\}} ([0-9.e+]+)$", text, re.M)
        found[name] = sum(float(v) for v in values)
    return found


async def variant_round(
    http: httpx.AsyncClient, urls: list[str], by_key: bool, conversations: int, turns: int, tag: str
) -> dict[str, Any]:
    router = Router(urls, by_key)
    before = {u: await metrics(http, u) for u in urls}
    # conversations run side by side, as a router sees them: their requests interleave
    runs = await asyncio.gather(
        *(conversation(http, router, f"[{tag}-{i}]", turns) for i in range(conversations))
    )
    after = {u: await metrics(http, u) for u in urls}
    later = [row for run in runs for row in run[1:]]
    return {
        "conversations": runs,
        "prompt_tokens_after_first_turn": sum(r["input_tokens"] for r in later),
        "cached_tokens_after_first_turn": sum(r["cached_tokens"] for r in later),
        "turns_on_the_previous_turns_replica": sum(
            a["replica"] == b["replica"] for run in runs for a, b in itertools.pairwise(run)
        ),
        "turns_after_first": len(later),
        "metrics": {u: {k: after[u][k] - before[u][k] for k in after[u]} for u in urls},
    }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = sum(r["prompt_tokens_after_first_turn"] for r in rounds)
    cached = sum(r["cached_tokens_after_first_turn"] for r in rounds)
    hits = sum(m["prefix_cache_hits"] for r in rounds for m in r["metrics"].values())
    queries = sum(m["prefix_cache_queries"] for r in rounds for m in r["metrics"].values())
    same = sum(r["turns_on_the_previous_turns_replica"] for r in rounds)
    later = sum(r["turns_after_first"] for r in rounds)
    return {
        "prefix_reuse": round(cached / prompt, 4) if prompt else 0.0,
        "cached_tokens": cached,
        "prompt_tokens": prompt,
        "engine_prefix_cache_hit_rate": round(hits / queries, 4) if queries else 0.0,
        "turns_on_the_same_replica": f"{same}/{later}",
    }


def start_replica(
    exit: ExitStack, model: Path, config: Path, store: Path, logs: Path, name: str
) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {
        **os.environ,
        "VLLM_PLUGINS": "vllm_mcp_ext",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VLLM_MCP_STORE": str(store),
        "VLLM_MCP_REPLICA": name,
    }
    vllm = shutil.which("vllm", path=str(Path(sys.executable).parent)) or "vllm"
    cmd = [
        vllm, "serve", str(model), "--served-model-name", "tiny",
        "--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.15",
        "--block-size", "32", "--max-model-len", "2048", "--enable-prefix-caching",
        "--enable-prompt-tokens-details", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--tool-server", str(config), "--port", str(port),
    ]  # fmt: skip
    proc = start(cmd, logs / f"vllm-{name}.log", env, cwd=REPO)
    exit.callback(stop, proc)
    return f"http://127.0.0.1:{port}", proc


async def measure(urls: list[str], conversations: int, turns: int, rounds: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=300) as http:
        await conversation(http, Router(urls, False), "[warm-up]", 2)  # both replicas once
        results: dict[str, list[dict[str, Any]]] = {"round_robin": [], "by_key": []}
        for i in range(rounds):
            for name in results:
                results[name].append(
                    await variant_round(http, urls, name == "by_key", conversations, turns, f"{name}-{i}")
                )
    return {name: {"summary": summarize(r), "rounds": r} for name, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quick"))
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    model = build_tiny_model()
    config = logs / "scale-mcp.json"
    calc = {"command": sys.executable, "args": [str(REPO / "examples" / "servers" / "calculator.py")]}
    config.write_text(json.dumps({"mcpServers": {"calc": calc}}))
    store = logs / "scale-responses.sqlite3"
    store.unlink(missing_ok=True)
    load_before = os.getloadavg()
    with ExitStack() as exit:
        started = [start_replica(exit, model, config, store, logs, n) for n in ("replica-a", "replica-b")]
        for (url, proc), name in zip(started, ("replica-a", "replica-b"), strict=True):
            wait_http(f"{url}/health", proc, 900, logs / f"vllm-{name}.log")
        urls = [url for url, _ in started]
        data = asyncio.run(measure(urls, args.conversations, args.turns, args.rounds))
    data["meta"] = {
        "command": " ".join(["python -m benchmarks.scale_out", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "replicas": 2,
        "conversations_per_round": args.conversations,
        "turns": args.turns,
        "rounds": args.rounds,
        "block_size": 32,
    }
    (args.out / "scale_out.json").write_text(json.dumps(data, indent=2) + "\n")
    for name in ("round_robin", "by_key"):
        print(name, json.dumps(data[name]["summary"]))


if __name__ == "__main__":
    main()
