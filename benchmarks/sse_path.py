"""CPU per streamed event of the SSE write path alone, in a uvicorn + uvloop server (as vLLM runs
it) on loopback: the plugin's `EventStream`, Starlette's `StreamingResponse` (stock vLLM's), and
the plugin's earlier path (`QueuedStream` below: the response's task hands each event to the
body task through a queue). The same events, made by a timer standing in for the engine (one
every 2 ms), so the only difference is the write path. The server process is pinned to one core;
its user and system CPU (`psutil`) and write(2) calls per event, variants interleaved.

    python -m benchmarks.sse_path --out docs/performance
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

EVENT = (
    'event: response.output_text.delta\ndata: {"content_index":0,"delta":" word","item_id":'
    '"msg_0123456789abcdef0123456789abcdef","logprobs":[],"output_index":0,"sequence_number":12,'
    '"type":"response.output_text.delta"}\n\n'
)
VARIANTS = ("stock", "plugin", "queued")


def _app(events: int) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from vllm_mcp_ext.api.disconnect import event_stream

    async def made() -> AsyncIterator[str]:
        for _ in range(events):
            await asyncio.sleep(0.002)  # the next engine output
            yield EVENT

    async def stock(request: Request) -> StreamingResponse:
        return StreamingResponse(made(), media_type="text/event-stream")

    async def plugin(request: Request) -> StreamingResponse:
        return event_stream(request, made())

    async def queued(request: Request) -> StreamingResponse:
        return StreamingResponse(_queued(made()), media_type="text/event-stream")

    handlers = {"stock": stock, "plugin": plugin, "queued": queued}
    return Starlette(routes=[Route(f"/{name}", handler) for name, handler in handlers.items()])


async def _queued(chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """The earlier path, reduced to its hand-over: a task makes the events into a bounded queue,
    the body task takes what is ready and writes it as one chunk."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    slots = asyncio.Semaphore(64)

    async def produce() -> None:
        async for chunk in chunks:
            await slots.acquire()
            queue.put_nowait(chunk)
        queue.put_nowait(None)

    producer = asyncio.create_task(produce())
    try:
        done = False
        while not done:
            ready = [await queue.get()]
            while not queue.empty():
                ready.append(queue.get_nowait())
            done = ready[-1] is None
            chunks_ready = [c for c in ready if c is not None]
            if chunks_ready:
                yield "".join(chunks_ready)
                for _ in chunks_ready:
                    slots.release()
    finally:
        producer.cancel()


async def _measure(port: int, pid: int, events: int, rounds: int) -> dict[str, Any]:
    import httpx
    import psutil

    server = psutil.Process(pid)
    totals = {
        f"{v}-{c}": {"user_s": 0.0, "system_s": 0.0, "writes": 0, "events": 0}
        for v in VARIANTS
        for c in (1, 16)
    }
    limits = httpx.Limits(max_keepalive_connections=0)  # a connection per stream, as the clients had
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as http:

        async def stream(path: str) -> None:
            async with http.stream("GET", path) as response:
                async for _ in response.aiter_raw():
                    pass

        for variant in VARIANTS:
            await stream(f"/{variant}")
        for round_ in range(rounds):
            for variant in VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]:
                for streams in (1, 16):
                    cpu, io = server.cpu_times(), server.io_counters()
                    await asyncio.gather(*(stream(f"/{variant}") for _ in range(streams)))
                    cpu2, io2 = server.cpu_times(), server.io_counters()
                    entry = totals[f"{variant}-{streams}"]
                    entry["user_s"] += cpu2.user - cpu.user
                    entry["system_s"] += cpu2.system - cpu.system
                    entry["writes"] += io2.write_count - io.write_count
                    entry["events"] += events * streams
    per_event = {
        key: {
            "us_per_event": (t["user_s"] + t["system_s"]) / t["events"] * 1e6,
            "user_us": t["user_s"] / t["events"] * 1e6,
            "system_us": t["system_s"] / t["events"] * 1e6,
            "writes_per_event": t["writes"] / t["events"],
        }
        for key, t in totals.items()
    }
    return {"events_per_stream": events, "rounds": rounds, "totals": totals, "per_event": per_event}


def _wait(port: int) -> None:
    import socket

    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        import uvicorn

        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        app = _app(int(sys.argv[3]))
        uvicorn.run(
            app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools", log_level="warning"
        )
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sse_path", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quick"))
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    from tests.support.processes import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sse_path", "serve", str(port), str(args.events)]
    )
    try:
        _wait(port)
        results = asyncio.run(_measure(port, server.pid, args.events, args.rounds))
    finally:
        server.terminate()
        server.wait()
    meta = {
        "command": "python -m benchmarks.sse_path " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sse_path.json").write_text(json.dumps({"meta": meta, "sse_path": results}, indent=2) + "\n")
    for key, value in results["per_event"].items():
        print(
            f"{key:10s} {value['us_per_event']:6.1f} us/event (user {value['user_us']:5.1f}, system {value['system_us']:5.1f}), writes/event {value['writes_per_event']:.2f}"
        )


if __name__ == "__main__":
    main()
