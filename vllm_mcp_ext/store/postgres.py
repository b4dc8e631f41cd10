"""The store for several vLLM replicas behind a load balancer: PostgreSQL, by connection URL."""

from __future__ import annotations

from typing import Any

from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.redact import redact_url as _redact_url
from vllm_mcp_ext.store.sql import SCHEMA, SqlStore

# ``CREATE TABLE IF NOT EXISTS`` is not safe against itself: two processes creating one table at
# once (``--api-server-count 4``, replicas starting together) fail with a duplicate key in
# pg_type. Schema changes take this transaction-scoped lock first, so they run one at a time.
_ONE_SCHEMA_CHANGE_AT_A_TIME = "SELECT pg_advisory_xact_lock(7154202851)"


class PostgresDatabase:
    def __init__(self, url: str):
        self.url = url
        self._pool: Any = None

    async def open(self) -> None:
        try:
            from psycopg_pool import AsyncConnectionPool
        except ImportError:
            raise ConfigError(
                "a postgresql:// store needs psycopg: pip install 'vllm-mcp-ext[postgres]'"
            ) from None
        pool = AsyncConnectionPool(self.url, min_size=1, max_size=8, open=False, kwargs={"autocommit": True})
        try:
            await pool.open(wait=True, timeout=30)
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(_ONE_SCHEMA_CHANGE_AT_A_TIME)
                for statement in SCHEMA:
                    await conn.execute(statement)
        except Exception as exc:
            await pool.close()
            raise ConfigError(f"cannot open the response store at {redact_url(self.url)}: {exc}") from None
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            if any(sql.lstrip().upper().startswith("CREATE") for sql, _ in statements):
                await conn.execute(_ONE_SCHEMA_CHANGE_AT_A_TIME)
            count = 0
            for sql, params in statements:
                cursor = await conn.execute(_pg(sql), params)
                count = cursor.rowcount
            return count

    async def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_pg(sql), params)
            return list(await cursor.fetchall())


class PostgresStore(SqlStore):
    def __init__(self, url: str):
        self.url = url
        self.db = PostgresDatabase(url)

    def __repr__(self) -> str:
        return f"PostgreSQL store at {redact_url(self.url)}"


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


def redact_url(url: str) -> str:
    """The URL without its password (nor ``?password=``), for logs and errors."""
    return _redact_url(url)
