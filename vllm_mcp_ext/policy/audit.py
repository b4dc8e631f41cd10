"""The audit record: one row per MCP call a response ran or refused, who asked, what, when, how
it ended and how long it took; never its arguments, results or any secret.

Sinks, picked by the tool-server file's ``policy.audit``: ``store`` (a table beside the
responses, queryable per key on ``GET /v1/mcp/audit``; the default), ``log`` (one JSON line per
call on the ``vllm_mcp_ext.audit`` logger) or ``off``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from vllm_mcp_ext.store.sql import Database

logger = logging.getLogger("vllm_mcp_ext.audit")
Outcome = Literal["ok", "error", "refused", "denied", "cancelled"]
DEFAULT_PAGE = 100
MAX_PAGE = 1000
KEEP_RECORDS = 100_000  # the store keeps this many newest records; older ones are pruned


@dataclass(frozen=True)
class AuditRecord:
    at: float  # epoch seconds the call started
    caller: str | None  # the key hash (never the key); None without --api-key
    response_id: str
    server_label: str
    tool: str
    outcome: Outcome
    duration_ms: float
    error_code: int | None = None  # the JSON-RPC-style code of a failed call

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class AuditSink(Protocol):
    async def record(self, entry: AuditRecord) -> None: ...


class NoAudit:
    async def record(self, entry: AuditRecord) -> None:
        return None


class LogAudit:
    async def record(self, entry: AuditRecord) -> None:
        logger.info("%s", json.dumps(entry.to_json(), separators=(",", ":")))


_SCHEMA = """CREATE TABLE IF NOT EXISTS mcp_ext_audit (
    at DOUBLE PRECISION NOT NULL,
    caller TEXT,
    response_id TEXT NOT NULL,
    server_label TEXT NOT NULL,
    tool TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    error_code INTEGER
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS mcp_ext_audit_caller ON mcp_ext_audit (caller, at)"
_ADD = """INSERT INTO mcp_ext_audit (at, caller, response_id, server_label, tool, outcome, duration_ms,
    error_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
_COLUMNS = "at, caller, response_id, server_label, tool, outcome, duration_ms, error_code"
_PRUNE = """DELETE FROM mcp_ext_audit WHERE at < (
    SELECT at FROM mcp_ext_audit ORDER BY at DESC LIMIT 1 OFFSET ?)"""


class StoreAudit:
    """Records in the response store's database, in a table of their own."""

    def __init__(self, db: Database, keep: int = KEEP_RECORDS):
        self.db = db
        self.keep = keep
        self._ready = False
        self._added = 0

    async def _tables(self) -> None:
        if not self._ready:
            await self.db.run([(_SCHEMA, ()), (_INDEX, ())])
            self._ready = True

    async def record(self, entry: AuditRecord) -> None:
        await self._tables()
        row = (entry.at, entry.caller, entry.response_id, entry.server_label, entry.tool, entry.outcome)
        statements: list[tuple[str, tuple[Any, ...]]] = [(_ADD, (*row, entry.duration_ms, entry.error_code))]
        self._added += 1
        if self._added % 1000 == 0:
            statements.append((_PRUNE, (self.keep,)))
        await self.db.run(statements)

    async def records(
        self, caller: str | None, *, limit: int = DEFAULT_PAGE, since: float | None = None
    ) -> list[AuditRecord]:
        """A caller's records, newest first (every caller's where ``caller`` is None: a server
        without keys)."""
        await self._tables()
        where: list[str] = ["at >= ?"]
        params: list[Any] = [since or 0.0]
        if caller is not None:
            where.append("caller = ?")
            params.append(caller)
        sql = f"SELECT {_COLUMNS} FROM mcp_ext_audit WHERE {' AND '.join(where)} ORDER BY at DESC LIMIT ?"
        rows = await self.db.rows(sql, (*params, max(1, min(limit, MAX_PAGE))))
        return [AuditRecord(*row) for row in rows]


class Stopwatch:
    """When a call started, for its record."""

    def __init__(self) -> None:
        self.at = time.time()
        self._start = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self._start) * 1000, 3)
