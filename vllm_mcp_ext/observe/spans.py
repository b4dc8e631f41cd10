"""OpenTelemetry spans per model turn and per MCP call (a sink of `observe.ToolCallRecord`), when
vLLM's tracing is on.

vLLM (``--otlp-traces-endpoint``) installs the global tracer provider in the API server process;
spans made here go to the same exporter. Without it, or without OpenTelemetry installed, every
span is a no-op. Spans are never made current (they cross ``yield``s of async generators, where a
context token cannot be reset), so they carry no parent from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vllm_mcp_ext.observe.record import ToolCallRecord

try:
    from opentelemetry import trace as _otel
except ImportError:  # pragma: no cover - vLLM installs it
    _otel = None  # type: ignore[assignment]

_SCOPE = "vllm_mcp_ext"


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span for the ``with`` block; the exception that leaves it marks it as an error."""
    if _otel is None:
        yield None
        return
    current = _otel.get_tracer(_SCOPE).start_span(name, attributes=attributes)
    try:
        yield current
    except BaseException as exc:
        current.set_status(_otel.Status(_otel.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        current.end()


def tool_call(record: ToolCallRecord) -> None:
    """The span of a finished ``tools/call``, with the call's own start and end times."""
    if _otel is None:
        return
    attributes = {"mcp.server": record.server, "mcp.tool": record.tool}
    current = _otel.get_tracer(_SCOPE).start_span(
        "mcp.tools/call", attributes=attributes, start_time=record.start_ns
    )
    if record.error is not None:
        current.set_status(_otel.Status(_otel.StatusCode.ERROR, record.error))
    current.end(end_time=record.end_ns)
