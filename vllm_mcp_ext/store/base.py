"""The store interface: `ResponseStore`, and `StoredResponse`, what it keeps of one response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})


@dataclass
class StoredResponse:
    """One response and everything needed to continue its conversation.

    ``request`` has no secrets: `headers` and `authorization` values are removed before storing.
    """

    id: str
    created_at: float
    status: str
    response: dict[str, Any]  # the response object as last sent (wire JSON)
    request: dict[str, Any]
    input_items: list[dict[str, Any]]
    conversation: dict[str, Any] | None  # `ParsableContext.to_json()`; None until it ends
    previous_response_id: str | None = None
    background: bool = False
    updated_at: float = field(default=0.0)
    owner: str | None = None  # the key hash of the caller that created it (never the key)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


class ResponseStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, record: StoredResponse) -> None:
        """Insert or replace the response."""
        ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool:
        """Remove the response and its events; False when there was none."""
        ...

    async def add_events(self, response_id: str, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Keep stream events of a background response, by sequence number."""
        ...

    async def events_after(self, response_id: str, sequence_number: int) -> list[dict[str, Any]]: ...

    async def request_cancel(self, response_id: str) -> None:
        """Flag a background response for cancellation (seen by whichever process runs it)."""
        ...

    async def cancel_requested(self, response_id: str) -> bool: ...

    async def put_credentials(self, key: str, value: dict[str, Any]) -> None:
        """Keep a configured server's OAuth client and tokens (the operator's login)."""
        ...

    async def get_credentials(self, key: str) -> dict[str, Any] | None: ...

    async def purge(self, older_than: float) -> int:
        """Delete responses created before ``older_than`` (epoch seconds); returns how many."""
        ...
