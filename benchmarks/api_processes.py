"""What ``--api-server-count N`` costs with the plugin (docs/scale-out.md): start-up, memory and
child processes per API server process, and the store's PostgreSQL connections.

    python -m benchmarks.api_processes [--out docs/performance] [--counts 1,2,4] [--stock-counts 4]

One ``vllm serve`` at a time (the tiny test model), configured with the three servers of
``examples/mcp.json`` (``calc`` over stdio, ``notes`` over streamable HTTP, ``facts`` over SSE; the
two HTTP servers run once, outside vLLM, on free ports), the store on a throwaway PostgreSQL. For
each N in ``--counts`` with the plugin, and each N in ``--stock-counts`` without it (no
``VLLM_PLUGINS``, no ``--tool-server``: what the same vLLM costs alone):

- start-up: seconds from the spawn to ``/health``, and (plugin) until every API server process has
  its MCP servers ready (N stdio children alive, then ``5 N`` fresh connections in a row find every
  server ready); each process's CPU seconds at that point (less sensitive to the machine's other
  load than wall time);
- the process tree, grouped by role (launcher, API server, engine core, worker, stdio MCP server,
  other), with RSS, USS and PSS per process (``psutil.memory_full_info``; PSS shares the pages
  processes have in common fairly, so its sum is what the tree costs);
- ``/mcp`` gateway sessions (the MCP SDK's streamable HTTP client, as docs/gateway.md shows):
  how many of 8 complete (a session lives in one process's memory);
- PostgreSQL client connections (``pg_stat_activity``) when idle after start-up, and after a burst
  of concurrent store reads spread over fresh connections (each API process has its own pool).

Writes ``api_processes.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.postgres import postgres_server
from tests.support.processes import free_port, start, stop, wait_http, wait_port
from tests.support.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
STDIO_MARK = "calculator.py"  # the examples' one stdio server
BURST = 64  # concurrent store reads, each on its own connection
GATEWAY_SESSIONS = 8  # /mcp gateway sessions tried, one after another


def role(proc: psutil.Process, launcher: int) -> str:
    if proc.pid == launcher:
        return "launcher"
    try:
        name, cmdline = proc.name(), " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    title = cmdline or name
    if STDIO_MARK in cmdline:
        return "stdio MCP server"
    for mark, named in (("ApiServer", "API server"), ("APIServer", "API server"),
                        ("EngineCore", "engine core"), ("Worker", "worker")):  # fmt: skip
        if mark in title:
            return named
    if "resource_tracker" in cmdline:
        return "resource tracker"
    return "other"


def tree(launcher: psutil.Process) -> list[dict[str, Any]]:
    rows = []
    for proc in [launcher, *launcher.children(recursive=True)]:
        try:
            memory = proc.memory_full_info()
            cpu = proc.cpu_times()
            rows.append(
                {
                    "pid": proc.pid,
                    "role": role(proc, launcher.pid),
                    "title": " ".join(proc.cmdline())[:120] or proc.name(),
                    "rss_mib": round(memory.rss / 2**20, 1),
                    "uss_mib": round(memory.uss / 2**20, 1),
                    "pss_mib": round(memory.pss / 2**20, 1),
                    "cpu_s": round(cpu.user + cpu.system, 2),
                    "threads": proc.num_threads(),
                }
            )
        except psutil.Error:
            continue
    return rows


def by_role(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(
            row["role"], {"count": 0, "rss_mib": [], "uss_mib": [], "pss_mib": [], "cpu_s": []}
        )
        group["count"] += 1
        for key in ("rss_mib", "uss_mib", "pss_mib", "cpu_s"):
            group[key].append(row[key])
    return {
        name: {
            "count": g["count"],
            **{f"{k}_each": g[k] for k in ("rss_mib", "uss_mib", "pss_mib", "cpu_s")},
            "pss_mib_total": round(sum(g["pss_mib"]), 1),
        }
        for name, g in groups.items()
    }


def postgres_connections(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def stdio_children(launcher: psutil.Process) -> int:
    return sum(1 for p in launcher.children(recursive=True) if role(p, launcher.pid) == "stdio MCP server")


def wait_every_process_ready(base_url: str, launcher: psutil.Process, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stdio_children(launcher) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stdio_children(launcher)} of {count} stdio MCP servers started")
        time.sleep(0.2)
    in_a_row = 0
    while in_a_row < 5 * count:  # fresh connections land on any process
        if time.monotonic() > deadline:
            raise RuntimeError("the API server processes' MCP servers did not all get ready")
        servers = httpx.get(f"{base_url}/v1/mcp/servers", timeout=10).json()["data"]
        in_a_row = in_a_row + 1 if all(s["status"] == "ready" for s in servers) else 0
        time.sleep(0.05 if in_a_row else 0.3)


async def store_burst(base_url: str) -> None:
    """Concurrent store reads (unknown ids: one SELECT each), each on its own connection."""

    async def one(i: int) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            await http.get(f"{base_url}/v1/responses/resp_{i:032x}")

    await asyncio.gather(*(one(i) for i in range(BURST)))


async def gateway_sessions(base_url: str, sessions: int = GATEWAY_SESSIONS) -> list[str]:
    """``sessions`` MCP SDK clients of the ``/mcp`` gateway, one after another, as docs/gateway.md
    shows one: initialize, list the tools, three calls. "ok" or the error, per session."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def one() -> str:
        async with (
            create_mcp_http_client() as http,
            streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await session.list_tools()
            for _ in range(3):
                result = await session.call_tool("calc__add", {"a": 2, "b": 3})
                if result.is_error:
                    return f"call failed: {result.content}"
        return "ok"

    outcomes = []
    for _ in range(sessions):
        try:
            outcomes.append(await asyncio.wait_for(one(), 20))
        except Exception as exc:  # what the user's client would see, out of the SDK's task groups
            while isinstance(exc, ExceptionGroup) and exc.exceptions:
                exc = exc.exceptions[0]
            outcomes.append(f"{type(exc).__name__}: {exc}"[:300])
    return outcomes


def run_variant(
    model: Path, config: Path, store_url: str, logs: Path, count: int, plugin: bool, timeout: float
) -> dict[str, Any]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "VLLM_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    flags: list[str] = []
    if plugin:
        env.update({"VLLM_PLUGINS": "vllm_mcp_ext", "VLLM_MCP_STORE": store_url})
        flags = ["--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--tool-server", str(config)]
    vllm = shutil.which("vllm", path=str(Path(sys.executable).parent)) or "vllm"
    cmd = [
        vllm, "serve", str(model), "--served-model-name", "tiny",
        "--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.15",
        "--block-size", "32", "--max-model-len", "2048", "--port", str(port),
        "--api-server-count", str(count), *flags,
    ]  # fmt: skip
    name = f"{'plugin' if plugin else 'stock'}-{count}"
    connections_before = postgres_connections(store_url)
    began = time.monotonic()
    proc = start(cmd, logs / f"vllm-{name}.log", env, cwd=EXAMPLES)
    try:
        launcher = psutil.Process(proc.pid)
        wait_http(f"{base_url}/health", proc, timeout, logs / f"vllm-{name}.log")
        health_s = time.monotonic() - began
        ready_s = None
        if plugin:
            wait_every_process_ready(base_url, launcher, count, timeout)
            ready_s = time.monotonic() - began
        time.sleep(2)  # let start-up settle (pools at their minimum, children forked)
        rows = tree(launcher)
        if count == 1:  # the launcher is the one API server
            for row in rows:
                row["role"] = "API server" if row["role"] == "launcher" else row["role"]
        result: dict[str, Any] = {
            "variant": name,
            "api_server_count": count,
            "plugin": plugin,
            "health_s": round(health_s, 1),
            "every_process_ready_s": None if ready_s is None else round(ready_s, 1),
            "processes": rows,
            "by_role": by_role(rows),
            "pss_mib_tree": round(sum(r["pss_mib"] for r in rows), 1),
            "stdio_mcp_servers": stdio_children(launcher),
        }
        if plugin:
            idle = postgres_connections(store_url) - connections_before
            asyncio.run(store_burst(base_url))
            result["postgres_connections"] = {
                "idle_after_start": idle,
                f"after_{BURST}_concurrent_reads": postgres_connections(store_url) - connections_before,
                "pool_max_per_process": 8,
            }
            outcomes = asyncio.run(gateway_sessions(base_url))
            result["gateway_sessions"] = {
                "ok": outcomes.count("ok"),
                "of": len(outcomes),
                "outcomes": outcomes,
            }
        return result
    finally:
        stop(proc)


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'variant':10} {'health s':>8} {'ready s':>8} {'API proc PSS MiB (each)':>28} {'API CPU s':>16} "
          f"{'tree PSS MiB':>12} {'stdio':>5} {'pg conns':>9} {'/mcp ok':>7}")  # fmt: skip
    for r in results:
        api = r["by_role"].get("API server", {"pss_mib_each": [], "cpu_s_each": []})
        conns = r.get("postgres_connections", {})
        print(
            f"{r['variant']:10} {r['health_s']:>8} {r['every_process_ready_s'] or '-':>8} "
            f"{api['pss_mib_each']!s:>28} {api['cpu_s_each']!s:>16} {r['pss_mib_tree']:>12} "
            f"{r['stdio_mcp_servers']:>5} {str(list(conns.values())[:2]) if conns else '-':>9} "
            f"{r.get('gateway_sessions', {}).get('ok', '-')!s:>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quick"))
    parser.add_argument("--counts", default="1,2,4", help="API server counts with the plugin")
    parser.add_argument("--stock-counts", default="4", help="API server counts without the plugin")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    logging.getLogger("mcp").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    model = build_tiny_model()
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        ports = {"notes": free_port(), "facts": free_port()}
        for server, port in ports.items():
            proc = start([sys.executable, str(EXAMPLES / "servers" / f"{server}.py"), "--port", str(port)],
                         logs / f"{server}.log", cwd=EXAMPLES)  # fmt: skip
            stack.callback(stop, proc)
            wait_port(port, proc, 60, logs / f"{server}.log")
        # examples/mcp.json with the HTTP servers on this run's ports
        config = json.loads((EXAMPLES / "mcp.json").read_text())
        config["mcpServers"]["notes"]["url"] = f"http://127.0.0.1:{ports['notes']}/mcp"
        config["mcpServers"]["facts"]["url"] = f"http://127.0.0.1:{ports['facts']}/sse"
        # this file lives elsewhere (relative cwd values resolve against its folder), and "python"
        # is this Python
        config["mcpServers"]["calc"].update(command=sys.executable, cwd=str(EXAMPLES))
        config_path = args.out / "logs" / "mcp.json"
        config_path.write_text(json.dumps(config))
        store_url = stack.enter_context(postgres_server())
        variants = [(int(n), True) for n in args.counts.split(",") if n] + [
            (int(n), False) for n in args.stock_counts.split(",") if n
        ]
        for count, plugin in variants:
            results.append(run_variant(model, config_path, store_url, logs, count, plugin, args.timeout))
            print_table(results[-1:])
    import vllm

    meta = {
        "command": "python -m benchmarks.api_processes " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, {platform.platform()}",
        "python": platform.python_version(),
        "vllm": vllm.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "config": "examples/mcp.json: calc (stdio), notes (streamable HTTP), facts (SSE)",
        "store": "PostgreSQL (throwaway, loopback)",
    }
    (args.out / "api_processes.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )
    print_table(results)


if __name__ == "__main__":
    main()
