"""A finished ``tools/call`` as every sink reads it, and a server's name as metrics and spans
show it. A leaf of `observe`: the sinks import it, it imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

REMOTE = "remote"


def server_label(name: str, *, remote: bool) -> str:
    """A server as metrics and spans name it: a configured server by its label, every remote
    (``server_url``) server as one, since a request names those freely (labels stay bounded)."""
    return REMOTE if remote else name


@dataclass
class ToolCallRecord:
    server: str  # `server_label`
    tool: str  # the MCP tool's own name
    start: float  # time.perf_counter()
    start_ns: int  # time.time_ns(), for the span
    end: float = 0.0
    end_ns: int = 0
    outcome: str = "failed"  # ok, error (the tool said isError), failed (no result), cancelled
    error: str | None = None  # the exception's type when the call raised
    request_label: str | None = None  # the requesting response's label of the server, if any

    def result(self, is_error: bool | None) -> None:
        self.outcome = "error" if is_error else "ok"
