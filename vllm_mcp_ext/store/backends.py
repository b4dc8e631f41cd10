"""The choice of backend from one setting, ``VLLM_MCP_STORE`` (kept out of the interface module:
the backends import it)."""

from __future__ import annotations

import os
from pathlib import Path

from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.store.base import ResponseStore


def default_sqlite_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "vllm-mcp-ext" / "responses.sqlite3"


def open_store(setting: str | None) -> ResponseStore | None:
    """``VLLM_MCP_STORE``: unset for the default SQLite file, a file path or ``sqlite:///path``,
    a ``postgresql://`` URL, or ``off`` to keep nothing (``store`` is then always false)."""
    value = (setting or "").strip()
    if value.lower() in ("off", "none", "false", "0"):
        return None
    if value.startswith(("postgresql://", "postgres://")):
        from vllm_mcp_ext.store.postgres import PostgresStore

        return PostgresStore(value)
    if value.startswith("sqlite:///"):
        value = value.removeprefix("sqlite:///")  # "rel.db" or "/abs.db", as SQLAlchemy reads it
    if "://" in value:
        raise ConfigError(f"VLLM_MCP_STORE: unsupported store URL scheme in {value.split('://')[0]!r}")
    from vllm_mcp_ext.store.sqlite import SqliteStore

    return SqliteStore(Path(value) if value else default_sqlite_path())
