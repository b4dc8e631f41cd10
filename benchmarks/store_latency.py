"""Response store cost per request: put + get of a realistic record, and bytes per conversation.

    python benchmarks/store_latency.py [--n 200] [--postgres]   (--postgres starts a throwaway server)

A record is what one response of a four-call conversation stores: request, input items, output
items and the conversation as the model saw it. Prints a table and writes JSON to
benchmarks/results/store_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.support.postgres import postgres_server
from vllm_mcp_ext.store import StoredResponse, open_store

RESULTS = Path(__file__).resolve().parent / "results"


def conversation_record(i: int) -> StoredResponse:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    tools = [
        {"name": n, "description": f"{n} two integers.", "input_schema": schema} for n in ("add", "multiply")
    ]
    calls = [
        {"id": f"mcp_{i}_{k}", "type": "mcp_call", "server_label": "calc", "name": "add",
         "arguments": '{"a": 2, "b": 3}', "output": "5", "status": "completed", "error": None}
        for k in range(4)
    ]  # fmt: skip
    message = {"id": f"msg_{i}", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "The answer is 20.", "annotations": []}]}  # fmt: skip
    history = [{"role": "user", "content": "Add 2 and 3 four times."}]
    for k in range(4):
        call = {
            "id": f"call_{k}",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
        }
        history += [{"role": "assistant", "content": "", "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": f"call_{k}", "content": "5"}]  # fmt: skip
    history.append({"role": "assistant", "content": "The answer is 20."})
    output = [
        {"id": f"mcpl_{i}", "type": "mcp_list_tools", "server_label": "calc", "tools": tools},
        *calls,
        message,
    ]
    return StoredResponse(
        id=f"resp_bench_{i}",
        created_at=time.time(),
        status="completed",
        response={"id": f"resp_bench_{i}", "object": "response", "status": "completed", "output": output},
        request={
            "model": "m",
            "input": "Add 2 and 3 four times.",
            "tools": [{"type": "mcp", "server_label": "calc"}],
        },
        input_items=[
            {"id": f"msg_in_{i}", "type": "message", "role": "user", "content": "Add 2 and 3 four times."}
        ],
        conversation={"messages": history, "listed": [], "waiting": [], "answered": []},
    )


async def measure(setting: str, n: int) -> dict[str, Any]:
    store = open_store(setting)
    assert store is not None
    await store.open()
    puts, gets = [], []
    try:
        for i in range(n):
            record = conversation_record(i)
            t0 = time.perf_counter()
            await store.put(record)
            t1 = time.perf_counter()
            await store.get(record.id)
            t2 = time.perf_counter()
            puts.append((t1 - t0) * 1000)
            gets.append((t2 - t1) * 1000)
    finally:
        await store.close()
    return {
        "put_ms_p50": statistics.median(puts),
        "put_ms_p95": statistics.quantiles(puts, n=20)[18],
        "get_ms_p50": statistics.median(gets),
        "get_ms_p95": statistics.quantiles(gets, n=20)[18],
        "record_json_bytes": len(json.dumps(conversation_record(0).__dict__)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        db = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.sqlite3"
        results["sqlite"] = asyncio.run(measure(str(db), args.n))
        size = sum(p.stat().st_size for p in db.parent.glob("bench.sqlite3*"))
        results["sqlite"]["file_bytes_per_response"] = size / args.n
        if args.postgres:
            results["postgresql"] = asyncio.run(measure(stack.enter_context(postgres_server()), args.n))
    print(f"{'backend':<12}{'put p50':>10}{'put p95':>10}{'get p50':>10}{'get p95':>10}  (ms, n={args.n})")
    for name, r in results.items():
        row = [r["put_ms_p50"], r["put_ms_p95"], r["get_ms_p50"], r["get_ms_p95"]]
        print(f"{name:<12}" + "".join(f"{v:>10.2f}" for v in row))
    print(f"record JSON: {results['sqlite']['record_json_bytes']} bytes; "
          f"SQLite file: {results['sqlite']['file_bytes_per_response']:.0f} bytes per response")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store_latency.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
