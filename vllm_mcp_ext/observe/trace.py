"""Per-response timings the plugin records, for the benchmarks.

Off unless ``VLLM_MCP_TRACE=1`` (`Settings.trace`): then each MCP response records when its model turns waited for
the engine, how long the plugin spent on the engine's outputs (parsing, events, SSE encoding:
everything downstream of one output until the next is asked for), each MCP call, and per turn
the prompt and cached tokens and whether the prompt continued the held tokens. The last
`KEEP` traces are served at ``GET /v1/mcp/traces/{response_id}``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vllm_mcp_ext.observe.record import ToolCallRecord

KEEP = 4096


@dataclass
class TurnTrace:
    start: float
    render_s: float = 0.0  # rendering and tokenizing the prompt, until generate() is called
    engine_s: float = 0.0  # waiting for the engine's outputs
    plugin_s: float = 0.0  # handling them: parsers, loop, events, encoding
    outputs: int = 0  # engine outputs (deltas) handled
    end: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    held_tokens: int = 0  # previous prompt + output ids this prompt starts with (0: full render)
    continued: bool = False
    rewritten: str | None = None
    loaded_tools: tuple[str, ...] = ()  # the tools the model could call (tool_search's included)


@dataclass
class CallTrace:
    server: str
    tool: str
    start: float
    end: float


@dataclass
class ResponseTrace:
    id: str
    start: float = field(default_factory=time.perf_counter)
    end: float = 0.0
    turns: list[TurnTrace] = field(default_factory=list)
    calls: list[CallTrace] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Wall time split into engine, MCP and plugin time.

        MCP time that overlaps a model turn (a call started early, while the model still
        writes) is hidden behind it: it counts once, as part of that turn.
        """
        total = self.end - self.start
        engine = sum(t.engine_s for t in self.turns)
        turns = [(t.start, t.end) for t in self.turns]
        calls = [(c.start, c.end) for c in self.calls]
        mcp = _union(calls)
        mcp_outside_turns = _union(turns + calls) - _union(turns)
        return {
            "total_s": total,
            "engine_s": engine,
            "mcp_s": mcp,
            "mcp_hidden_s": mcp - mcp_outside_turns,
            "plugin_s": total - engine - mcp_outside_turns,
            "hot_path_s": sum(t.plugin_s for t in self.turns),
            "render_s": sum(t.render_s for t in self.turns),
            "output_tokens": sum(t.output_tokens for t in self.turns),
            "turns": len(self.turns),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


_current: ContextVar[ResponseTrace | None] = ContextVar("vllm_mcp_ext_trace", default=None)
_done: OrderedDict[str, ResponseTrace] = OrderedDict()


def current() -> ResponseTrace | None:
    return _current.get()


def begin(response_id: str) -> ResponseTrace:
    """Start recording a response in this task's context (and the tasks it starts); the caller
    asks only when `Settings.trace` is on."""
    trace = ResponseTrace(response_id)
    _current.set(trace)
    return trace


def end(trace: ResponseTrace | None) -> None:
    if trace is None:
        return
    trace.end = time.perf_counter()
    _done[trace.id] = trace
    while len(_done) > KEEP:
        _done.popitem(last=False)


def tool_call(record: ToolCallRecord) -> None:
    """A finished call of the response being recorded (a sink of `observe.ToolCallRecord`),
    under the request's label of its server."""
    trace = _current.get()
    if trace is not None:
        trace.calls.append(
            CallTrace(record.request_label or record.server, record.tool, record.start, record.end)
        )


def finished(response_id: str) -> ResponseTrace | None:
    return _done.get(response_id)


def _union(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
