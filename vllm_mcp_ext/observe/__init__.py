"""What the plugin tells operators about its MCP work, recorded once and read by every sink.

A finished ``tools/call`` is one `ToolCallRecord`, made in one place (`tool_call`, which every
call passes: `servers.session.McpSession.call_tool`), and handed to the three sinks: the
Prometheus metrics (`metrics`), the OpenTelemetry span (`spans`) and, when ``VLLM_MCP_TRACE`` is
on, the response's trace for the benchmarks (`trace`). A server's name as metrics and spans show
it is worked out once, by `server_label`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from vllm_mcp_ext.observe import metrics, spans, trace
from vllm_mcp_ext.observe.record import REMOTE, ToolCallRecord, server_label

# The request's own label of the server a call goes to, set by the loop around its calls (the
# trace names servers as the request does; metrics and spans name them by `server_label`).
_request_label: ContextVar[str | None] = ContextVar("vllm_mcp_ext_call_label", default=None)


@contextmanager
def tool_call(server: str, tool: str) -> Iterator[ToolCallRecord]:
    """Time the ``with`` block as one ``tools/call`` and record it once when it ends; the block
    calls ``record.result(...)`` with the result, an exception leaving it is the outcome."""
    record = ToolCallRecord(server, tool, time.perf_counter(), time.time_ns())
    record.request_label = _request_label.get()
    try:
        yield record
    except asyncio.CancelledError:
        record.outcome, record.error = "cancelled", "CancelledError"
        raise
    except BaseException as exc:
        record.outcome, record.error = "failed", type(exc).__name__
        raise
    finally:
        record.end, record.end_ns = time.perf_counter(), time.time_ns()
        finished(record)


def finished(record: ToolCallRecord) -> None:
    """The one place a finished call is recorded: every sink reads it from here."""
    metrics.tool_call(record.server, record.tool, record.outcome, record.end - record.start)
    spans.tool_call(record)
    trace.tool_call(record)


@contextmanager
def calls_for(label: str) -> Iterator[None]:
    """Calls made in the ``with`` block are for the server the request labels ``label``."""
    token = _request_label.set(label)
    try:
        yield
    finally:
        _request_label.reset(token)


__all__ = [
    "REMOTE",
    "ToolCallRecord",
    "calls_for",
    "finished",
    "metrics",
    "server_label",
    "spans",
    "tool_call",
    "trace",
]
