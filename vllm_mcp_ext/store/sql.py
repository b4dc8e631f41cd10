"""The SQL both backends run: one table of responses, one of background stream events, one of
owners (the key hash of the caller that created a response; a table of its own so databases made
before it need no migration: a response without a row there has no owner), and one of OAuth
credentials of configured servers (see servers.oauth.storage; never purged).

JSON goes in TEXT columns, so the schema is the same on SQLite and PostgreSQL; queries use ``?``
placeholders and the PostgreSQL backend rewrites them.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from vllm_mcp_ext.store.base import StoredResponse

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mcp_ext_responses (
        id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        previous_response_id TEXT,
        background INTEGER NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        request TEXT NOT NULL,
        response TEXT NOT NULL,
        input_items TEXT NOT NULL,
        conversation TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS mcp_ext_responses_created ON mcp_ext_responses (created_at)",
    """CREATE TABLE IF NOT EXISTS mcp_ext_events (
        response_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (response_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS mcp_ext_owners (
        response_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS mcp_ext_credentials (
        key TEXT PRIMARY KEY,
        updated_at DOUBLE PRECISION NOT NULL,
        value TEXT NOT NULL
    )""",
)

_COLUMNS = (
    "id, created_at, updated_at, status, previous_response_id, background, request, response, "
    "input_items, conversation"
)
PUT = f"""INSERT INTO mcp_ext_responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, status = excluded.status,
    response = excluded.response, conversation = excluded.conversation"""
GET = (
    f"SELECT {_COLUMNS}, o.owner FROM mcp_ext_responses r "
    "LEFT JOIN mcp_ext_owners o ON o.response_id = r.id WHERE r.id = ?"
)
PUT_OWNER = "INSERT INTO mcp_ext_owners (response_id, owner) VALUES (?, ?) ON CONFLICT DO NOTHING"
DELETE_OWNER = "DELETE FROM mcp_ext_owners WHERE response_id = ?"
PURGE_OWNERS = (
    "DELETE FROM mcp_ext_owners WHERE response_id IN (SELECT id FROM mcp_ext_responses WHERE created_at < ?)"
)
DELETE = "DELETE FROM mcp_ext_responses WHERE id = ?"
DELETE_EVENTS = "DELETE FROM mcp_ext_events WHERE response_id = ?"
ADD_EVENT = "INSERT INTO mcp_ext_events (response_id, seq, event) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
EVENTS_AFTER = "SELECT event FROM mcp_ext_events WHERE response_id = ? AND seq > ? ORDER BY seq"
REQUEST_CANCEL = "UPDATE mcp_ext_responses SET cancel_requested = 1 WHERE id = ?"
CANCEL_REQUESTED = "SELECT cancel_requested FROM mcp_ext_responses WHERE id = ?"
PURGE_EVENTS = (
    "DELETE FROM mcp_ext_events WHERE response_id IN (SELECT id FROM mcp_ext_responses WHERE created_at < ?)"
)
PURGE = "DELETE FROM mcp_ext_responses WHERE created_at < ?"
PUT_CREDENTIALS = """INSERT INTO mcp_ext_credentials (key, updated_at, value) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at, value = excluded.value"""
GET_CREDENTIALS = "SELECT value FROM mcp_ext_credentials WHERE key = ?"


class Database(Protocol):
    """What a backend gives the shared queries: run statements, read rows."""

    async def open(self) -> None:
        """Connect and create the tables if needed; `ConfigError` when it cannot."""
        ...

    async def close(self) -> None: ...

    async def run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        """Run statements in one transaction; the last one's row count."""
        ...

    async def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...


class SqlStore:
    """The `ResponseStore` on top of a `Database`."""

    db: Database

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def put(self, record: StoredResponse) -> None:
        now = time.time()
        params = (
            record.id,
            record.created_at,
            now,
            record.status,
            record.previous_response_id,
            int(record.background),
            json.dumps(record.request),
            json.dumps(record.response),
            json.dumps(record.input_items),
            None if record.conversation is None else json.dumps(record.conversation),
        )
        statements: list[tuple[str, tuple[Any, ...]]] = [(PUT, params)]
        if record.owner is not None:
            statements.append((PUT_OWNER, (record.id, record.owner)))
        await self.db.run(statements)

    async def get(self, response_id: str) -> StoredResponse | None:
        rows = await self.db.rows(GET, (response_id,))
        if not rows:
            return None
        (
            rid,
            created,
            updated,
            status,
            previous,
            background,
            request,
            response,
            items,
            conversation,
            owner,
        ) = rows[0]
        return StoredResponse(
            id=rid,
            created_at=created,
            updated_at=updated,
            status=status,
            previous_response_id=previous,
            background=bool(background),
            request=json.loads(request),
            response=json.loads(response),
            input_items=json.loads(items),
            conversation=None if conversation is None else json.loads(conversation),
            owner=owner,
        )

    async def delete(self, response_id: str) -> bool:
        statements = [
            (DELETE_EVENTS, (response_id,)),
            (DELETE_OWNER, (response_id,)),
            (DELETE, (response_id,)),
        ]
        return await self.db.run(statements) > 0

    async def add_events(self, response_id: str, events: list[tuple[int, dict[str, Any]]]) -> None:
        if events:
            await self.db.run([(ADD_EVENT, (response_id, seq, json.dumps(event))) for seq, event in events])

    async def events_after(self, response_id: str, sequence_number: int) -> list[dict[str, Any]]:
        return [
            json.loads(row[0]) for row in await self.db.rows(EVENTS_AFTER, (response_id, sequence_number))
        ]

    async def request_cancel(self, response_id: str) -> None:
        await self.db.run([(REQUEST_CANCEL, (response_id,))])

    async def cancel_requested(self, response_id: str) -> bool:
        rows = await self.db.rows(CANCEL_REQUESTED, (response_id,))
        return bool(rows and rows[0][0])

    async def put_credentials(self, key: str, value: dict[str, Any]) -> None:
        await self.db.run([(PUT_CREDENTIALS, (key, time.time(), json.dumps(value)))])

    async def get_credentials(self, key: str) -> dict[str, Any] | None:
        rows = await self.db.rows(GET_CREDENTIALS, (key,))
        return json.loads(rows[0][0]) if rows else None

    async def purge(self, older_than: float) -> int:
        return await self.db.run(
            [(PURGE_EVENTS, (older_than,)), (PURGE_OWNERS, (older_than,)), (PURGE, (older_than,))]
        )
