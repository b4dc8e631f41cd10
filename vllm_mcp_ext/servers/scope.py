"""`RequestSources`: the tool sources one request uses, and the one place that gives back what
they borrowed for it (a remote source's pooled session) once the response is over."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Protocol, runtime_checkable

from vllm_mcp_ext.types.source import ToolSource


@runtime_checkable
class Borrowing(Protocol):
    """A source that holds something for its request (`servers.remote.RemoteSource`)."""

    def release(self) -> None: ...


class RequestSources:
    """Created per request; `close` (or leaving ``with``/``async with``) releases every source
    that borrowed something. Synchronous, cheap and idempotent: close it however the response
    ends (streamed or not, failed, cancelled, or never started)."""

    def __init__(self, sources: Iterable[ToolSource] = ()):
        self._borrowing = [s for s in sources if isinstance(s, Borrowing)]
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for source in self._borrowing:
            source.release()

    def __enter__(self) -> RequestSources:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> RequestSources:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
