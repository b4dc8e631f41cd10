"""`EventLog`: the SSE events ``/mcp`` keeps so a client can resume a stream (``Last-Event-ID``).

Bounded: at most ``VLLM_MCP_SSE_EVENTS`` events (`Settings.sse_events`, default 1000) over all sessions together; past
it the oldest are dropped, and a client resuming after a dropped event gets nothing replayed
(its request's answer may then be lost, as if it had not reconnected). Each MCP session replays
only its own events: the SDK numbers streams by request id, which repeat across sessions, so the
log keeps one `SessionEvents` per session and drops them when the session ends.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from uuid import uuid4

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage

DEFAULT_EVENTS = 1000


@dataclass(frozen=True)
class _Event:
    session: str
    stream: StreamId
    message: JSONRPCMessage | None  # None: a priming event


class EventLog:
    def __init__(self, max_events: int = DEFAULT_EVENTS):
        self.max_events = max_events
        self._events: OrderedDict[EventId, _Event] = OrderedDict()

    def session(self, session_id: str) -> SessionEvents:
        return SessionEvents(self, session_id)

    def drop(self, session_id: str) -> None:
        for event_id in [k for k, e in self._events.items() if e.session == session_id]:
            del self._events[event_id]

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: _Event) -> EventId:
        event_id = uuid4().hex
        self._events[event_id] = event
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)
        return event_id

    def after(self, session_id: str, event_id: EventId) -> tuple[StreamId, list[EventMessage]] | None:
        """The events of ``event_id``'s stream that came after it; None if it is not this
        session's or no longer kept."""
        first = self._events.get(event_id)
        if first is None or first.session != session_id:
            return None
        found, later = False, []
        for key, event in self._events.items():
            if key == event_id:
                found = True
            elif (
                found
                and event.message is not None
                and (event.session, event.stream) == (session_id, first.stream)
            ):
                later.append(EventMessage(event.message, key))
        return first.stream, later


class SessionEvents(EventStore):
    """One MCP session's view of the log: the SDK's `EventStore` for its transport."""

    def __init__(self, log: EventLog, session_id: str):
        self._log = log
        self._session = session_id

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        return self._log.add(_Event(self._session, stream_id, message))

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        found = self._log.after(self._session, last_event_id)
        if found is None:
            return None
        stream, events = found
        for event in events:
            await send_callback(event)
        return stream
