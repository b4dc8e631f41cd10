"""Where the API server's CPU goes per streamed token, by sampling it with py-spy.

`api_cpu` measures how much CPU the API-server process spends per token; this says on what. The
quick stack runs, and for each variant (the plugin's /v1/responses with MCP tools; stock
/v1/chat/completions with the same tools as function tools; the same answer) one stream at a time
runs for ``--seconds`` while py-spy samples the process. Each sample is put in the first matching
group below (whole stacks, so a group holds everything under it), and the JSON gives each group's
share of the samples.

    pip install py-spy
    python -m benchmarks.profile_api --out docs/performance
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import ClientLoop, http_client
from benchmarks.context import Context
from benchmarks.run import _default_model, _meta
from benchmarks.scenarios import api_cpu
from benchmarks.scripted import Plan
from benchmarks.stack import QUICK, running

# (group, a substring of a frame); a sample goes to the first group one of its frames matches
GROUPS = (
    ("socket write (uvicorn's send: the syscall and loopback delivery)", "RequestResponseCycle.send"),
    ("plugin: loop, parser, events, SSE encoding", "vllm_mcp_ext/"),
    ("stock: chat completion stream (parser, chunks, encoding)", "chat_completion_stream_generator"),
    ("vLLM engine client: outputs, detokenizer, stats", "vllm/v1/"),
    ("HTTP and ASGI (uvicorn, starlette)", "starlette/"),
)


def groups(raw: Path) -> dict[str, float]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        group = next((name for name, key in GROUPS if key in stack), "other (event loop, zmq, ...)")
        counts[group] += int(n)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name in [*(g for g, _ in GROUPS), "other (event loop, zmq, ...)"]}


async def _profile(stack: Any, out: Path, seconds: int, spy: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with http_client() as http:
        ctx = Context(QUICK, stack, http, out)
        async with ClientLoop(stack) as client:
            plan = Plan(calls=(), text=QUICK.cpu_words)
            variants = {
                "responses_text": lambda: api_cpu._responses(ctx, plan),
                "chat_text": lambda: api_cpu._chat(ctx, plan, client.tools),
            }
            for request in variants.values():
                await request()
            for name, request in variants.items():
                raw = out / f"profile_api-{name}.txt"
                cmd = [spy, "record", "-p", str(stack.vllm_pid), "-d", str(seconds), "-r", "100",
                       "-f", "raw", "-o", str(raw), "--nonblocking"]  # fmt: skip
                sampler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                await asyncio.sleep(1.0)
                end, streams = time.monotonic() + seconds - 2, 0
                while time.monotonic() < end:
                    await request()
                    streams += 1
                sampler.wait()
                results[name] = {"streams": streams, "shares": groups(raw)}
                raw.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_api", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quick"))
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    model = _default_model("quick", args.out)
    started = time.perf_counter()
    with running(QUICK, model, args.out / "logs", litellm=None) as stack:
        results = asyncio.run(_profile(stack, args.out, args.seconds, spy))
    meta = _meta("quick", model, time.perf_counter() - started)
    meta["command"] = "python -m benchmarks.profile_api " + " ".join(sys.argv[1:])
    (args.out / "profile_api.json").write_text(
        json.dumps({"meta": meta, "profile_api": results}, indent=2) + "\n"
    )
    for name, data in results.items():
        print(f"\n{name} ({data['streams']} streams, one at a time): share of the API server's samples")
        for group, share in data["shares"].items():
            print(f"  {share * 100:5.1f} %  {group}")


if __name__ == "__main__":
    main()
