"""A finished tool call is recorded once (`observe.tool_call`) and every sink reads that record:
the response's trace, the Prometheus metrics and the OpenTelemetry span each show the call
exactly once, with the same server, tool and times."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.asgi import plugin_client
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext import observe
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.observe import metrics, spans
from vllm_mcp_ext.types.parts import TextDelta

CALCULATOR = Path(__file__).resolve().parents[2] / "examples" / "servers" / "calculator.py"
CALC = StdioServerSpec("calc", sys.executable, (str(CALCULATOR),))


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans the plugin makes, kept in memory (vLLM's tracing would export them)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(spans._otel, "get_tracer", provider.get_tracer)
    yield exporter
    provider.shutdown()


def calls_counted(server: str, tool: str, outcome: str) -> float:
    for family in metrics.collectors()["calls"].collect():
        for s in family.samples:
            if s.name == "vllm:mcp_tool_calls_total" and s.labels == {
                "server": server,
                "tool": tool,
                "outcome": outcome,
            }:
                return float(s.value)
    return 0.0


def durations(server: str, tool: str) -> float:
    for family in metrics.collectors()["duration"].collect():
        for s in family.samples:
            if s.name.endswith("_count") and s.labels == {"server": server, "tool": tool}:
                return float(s.value)
    return 0.0


async def test_a_call_of_the_loop_is_in_the_trace_the_metrics_and_a_span_once(
    tmp_path: Path, exported: InMemorySpanExporter
) -> None:
    engine = ScriptedTurns([tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("5")]])
    before = calls_counted("calc", "add", "ok"), durations("calc", "add")
    tools: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
    traced = Settings(connect_timeout=20, call_timeout=20, trace=True)
    async with plugin_client(engine, (CALC,), tmp_path / "r.sqlite3", settings=traced) as http:
        r = await http.post("/v1/responses", json={"model": "scripted", "input": "2+3?", "tools": tools})
        assert r.status_code == 200, r.text
        assert [i["type"] for i in r.json()["output"]] == ["mcp_list_tools", "mcp_call", "message"]
        recorded = (await http.get(f"/v1/mcp/traces/{r.json()['id']}")).json()
    assert [(c["server"], c["tool"]) for c in recorded["calls"]] == [("calc", "add")]
    assert (calls_counted("calc", "add", "ok"), durations("calc", "add")) == (before[0] + 1, before[1] + 1)
    calls = [s for s in exported.get_finished_spans() if s.name == "mcp.tools/call"]
    assert [(dict(s.attributes or {}), s.status.is_ok) for s in calls] == [
        ({"mcp.server": "calc", "mcp.tool": "add"}, True)
    ]
    call = recorded["calls"][0]
    span = calls[0]
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time - span.start_time == pytest.approx((call["end"] - call["start"]) * 1e9, abs=2e6)


async def test_a_failed_call_is_recorded_once_as_failed_under_the_request_label(
    exported: InMemorySpanExporter,
) -> None:
    response = observe.trace.begin("resp_observe_test")
    before = calls_counted(observe.REMOTE, "fetch", "failed")
    remote = observe.server_label("docs", remote=True)
    with pytest.raises(TimeoutError), observe.calls_for("docs"), observe.tool_call(remote, "fetch"):
        raise TimeoutError
    observe.trace.end(response)
    assert [(c.server, c.tool) for c in response.calls] == [("docs", "fetch")]  # the request's label
    assert calls_counted(observe.REMOTE, "fetch", "failed") == before + 1
    (span,) = exported.get_finished_spans()
    assert dict(span.attributes or {}) == {"mcp.server": "remote", "mcp.tool": "fetch"}
    assert not span.status.is_ok and span.status.description == "TimeoutError"
