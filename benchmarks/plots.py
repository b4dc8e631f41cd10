"""One PNG per scenario from its JSON (matplotlib; skipped, with a note, when not installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_all(results: dict[str, Any], out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for name, fn in (
        ("loop_vs_client", _loop_vs_client),
        ("turn_prefix", _turn_prefix),
        ("overhead", _overhead),
        ("mcp_call", _mcp_call),
        ("early_exec", _early_exec),
    ):
        if name in results and "error" not in results[name]:
            path = out / f"perf-{name}.png"
            fn(results[name], path, title)
            made.append(path)
    return made


def _figure(cols: int = 2) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, cols, figsize=(max(4.2 * cols, 6.4), 3.2), dpi=80)
    return fig, axes


def _save(fig: Any, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _loop_vs_client(results: dict[str, Any], path: Path, title: str) -> None:
    tasks = [t for t in results if isinstance(results[t], dict) and "variants" in results[t]]
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tasks), 2, figsize=(8.4, 3.0 * len(tasks)), dpi=80, squeeze=False)
    for (lat, thr), task in zip(axes, tasks, strict=True):
        _loop_task(results[task], lat, thr, task)
    _save(fig, path, f"{title}: (a) plugin, (b) client loop, (c) LiteLLM")


def _loop_task(data: dict[str, Any], lat: Any, thr: Any, task: str) -> None:
    keys = list(data["variants"])
    labels = [f"({k})" for k in keys]
    p50 = [data["latency_c1"][k]["p50_s"] * 1e3 for k in keys]
    p95 = [data["latency_c1"][k]["p95_s"] * 1e3 for k in keys]
    xs = range(len(keys))
    lat.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    lat.bar([x + 0.2 for x in xs], p95, 0.4, label="p95")
    lat.set_xticks(list(xs), labels)
    lat.set_ylabel("ms per task, c=1")
    lat.set_title(task, fontsize=8)
    lat.legend(fontsize=7)
    conc = list(data["throughput"])
    width = 0.8 / len(keys)
    for i, k in enumerate(keys):
        thr.bar(
            [c + (i - (len(keys) - 1) / 2) * width for c in range(len(conc))],
            [data["throughput"][c][k]["rps"] for c in conc],
            width,
            label=labels[i],
        )
    thr.set_xticks(range(len(conc)), [f"c={c}" for c in conc])
    thr.set_ylabel("tasks per second")
    thr.legend(fontsize=7)


def _turn_prefix(data: dict[str, Any], path: Path, title: str) -> None:
    styles = list(data["styles"])
    fig, axes = _figure(len(styles))
    for ax, style in zip(axes, styles, strict=True):
        for key, label in (("a", "(a) plugin"), ("b", "(b) client loop")):
            turns = data["styles"][style][key]["cached_and_reusable_per_turn"][0]
            shares = [c / r if r else 0 for c, r in turns]
            ax.plot(range(1, len(shares) + 1), shares, marker="o", label=label)
        ax.set_ylim(0, 1.05)
        ax.set_xticks(range(1, len(shares) + 1))
        ax.set_xlabel("turn")
        ax.set_ylabel("cached / reusable tokens")
        ax.set_title(f"model writes {style} JSON", fontsize=8)
        ax.legend(fontsize=7)
    _save(fig, path, f"{title}: prefix reuse per turn")


def _overhead(data: dict[str, Any], path: Path, title: str) -> None:
    fig, (traced, micro) = _figure()
    p = data["traced"]["p50"]
    parts = {"engine": p["engine_s"], "MCP": p["mcp_s"], "plugin": p["plugin_s"]}
    traced.bar(list(parts), [v * 1e3 for v in parts.values()])
    traced.set_ylabel("ms per response (p50)")
    for kind, entries in data["micro"].items():
        micro.plot(
            [e["tokens"] for e in entries], [e["us_per_token"] for e in entries], marker="o", label=kind
        )
    lengths = [e["tokens"] for e in next(iter(data["micro"].values()))]
    micro.set_xscale("log")
    micro.set_xticks(lengths, [str(n) for n in lengths])
    micro.minorticks_off()
    micro.set_ylim(bottom=0)
    micro.set_xlabel("tokens in the turn")
    micro.set_ylabel("us per token (hot path)")
    micro.legend(fontsize=7)
    _save(fig, path, f"{title}: plugin overhead")


def _mcp_call(data: dict[str, Any], path: Path, title: str) -> None:
    fig, ax = _figure(1)
    transports = list(data)
    xs = range(len(transports))
    ax.bar([x - 0.2 for x in xs], [data[t]["pooled"]["p50_ms"] for t in transports], 0.4, label="pooled")
    ax.bar(
        [x + 0.2 for x in xs], [data[t]["fresh"]["p50_ms"] for t in transports], 0.4, label="fresh session"
    )
    ax.set_xticks(list(xs), transports)
    ax.set_ylabel("ms per tools/call (p50)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    _save(fig, path, f"{title}: MCP call latency")


def _early_exec(data: dict[str, Any], path: Path, title: str) -> None:
    fig, ax = _figure(1)
    bars = {
        "response": data["latency_p50_s"],
        "first model turn": data["first_turn_p50_s"],
        "saved by early\nexecution": data.get("saved_p50_s", data["mcp_hidden_p50_s"]),
    }
    ax.bar(list(bars), [v * 1e3 for v in bars.values()])
    ax.set_ylabel("ms (p50)")
    ax.tick_params(axis="x", labelsize=7)
    _save(fig, path, f"{title}: a {data['tool_ms']} ms call, then a fast one, in one turn")
