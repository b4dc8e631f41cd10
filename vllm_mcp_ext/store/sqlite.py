"""The default store: one SQLite file, shared safely by several API server processes (WAL mode,
a busy timeout). Calls run on one worker thread so the event loop never blocks on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.store.sql import SCHEMA, SqlStore

BUSY_TIMEOUT = 30.0  # seconds a statement waits for another process's lock


def _setup(conn: sqlite3.Connection, statement: str) -> None:
    """One set-up statement, retried while another process sets up the same new file: SQLite
    answers "database is locked" at once, without waiting, when connections switch a new file to
    WAL together or one's read snapshot went stale before its CREATE (API server processes
    starting together, ``--api-server-count``)."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class SqliteDatabase:
    def __init__(self, path: Path):
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-ext-sqlite")

    async def open(self) -> None:
        await self._call(self._open)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            for statement in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", *SCHEMA):
                _setup(conn, statement)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the response store {str(self.path)!r}: {exc}") from None
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._thread.shutdown(wait=False)

    async def run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        return await self._call(self._run, statements)

    def _run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        assert self._conn is not None
        count = 0
        with self._conn:  # one transaction
            self._conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                count = self._conn.execute(sql, params).rowcount
        return count

    async def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._call(self._rows, sql, params)

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)


class SqliteStore(SqlStore):
    def __init__(self, path: Path):
        self.path = path
        self.db = SqliteDatabase(path)

    def __repr__(self) -> str:
        return f"SQLite store at {self.path}"
