"""Prometheus metrics of MCP work, on vLLM's own ``/metrics`` (tool calls: a sink of
`observe.ToolCallRecord`).

vLLM serves ``/metrics`` from prometheus_client's default registry, or, with several API server
processes, from ``PROMETHEUS_MULTIPROC_DIR`` through a multiprocess collector. Metrics made here
with the default registry land in either, as long as they are made after vLLM has set that
variable: so they are made on first use, not at import. Names follow vLLM's (``vllm:`` prefix).

Labels stay bounded: ``server`` is `observe.server_label` (a configured server's label, or
``remote`` for every ``server_url`` server); ``tool`` is the MCP tool's own name.
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TURN_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32)


@functools.cache
def _metrics() -> dict[str, Any]:
    return {
        "calls": Counter(
            "vllm:mcp_tool_calls",
            "MCP tools/call requests by server, tool and outcome (ok, error: the tool said "
            "isError, failed: no result, cancelled)",
            ["server", "tool", "outcome"],
        ),
        "duration": Histogram(
            "vllm:mcp_tool_call_duration_seconds",
            "Time from sending an MCP tools/call to its result",
            ["server", "tool"],
            buckets=_CALL_BUCKETS,
        ),
        "lists": Counter(
            "vllm:mcp_tool_list_calls",
            "MCP tools/list requests by server and outcome (ok, failed)",
            ["server", "outcome"],
        ),
        "approvals": Counter(
            "vllm:mcp_approvals",
            "MCP approvals by server and decision (requested, approved, denied)",
            ["server", "decision"],
        ),
        "turns": Histogram(
            "vllm:mcp_loop_turns_per_response",
            "Model turns the MCP loop ran for one response",
            buckets=_TURN_BUCKETS,
        ),
        "sessions": Gauge(
            "vllm:mcp_pooled_sessions",
            "Open MCP client sessions: configured servers and pooled remote ones",
            ["kind"],
            multiprocess_mode="livesum",
        ),
    }


def collectors() -> dict[str, Any]:
    """The metric objects themselves (for tests: vLLM unregisters every ``vllm``-named collector
    from the default registry when an engine starts in the process, so a later read of the
    registry need not see them, while ``/metrics`` of a server does)."""
    return _metrics()


def tool_call(server: str, tool: str, outcome: str, seconds: float) -> None:
    m = _metrics()
    m["calls"].labels(server, tool, outcome).inc()
    m["duration"].labels(server, tool).observe(seconds)


def tool_list(server: str, ok: bool) -> None:
    _metrics()["lists"].labels(server, "ok" if ok else "failed").inc()


def approval(server: str, decision: str) -> None:
    _metrics()["approvals"].labels(server, decision).inc()


def loop_turns(turns: int) -> None:
    if turns:
        _metrics()["turns"].observe(turns)


def session_opened(kind: str) -> None:
    _metrics()["sessions"].labels(kind).inc()


def session_closed(kind: str) -> None:
    _metrics()["sessions"].labels(kind).dec()
