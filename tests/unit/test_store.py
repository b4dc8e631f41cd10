"""The same behaviour from every store backend: SQLite, and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.ci import unavailable
from tests.support.postgres import binaries, postgres_server
from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.store import ResponseStore, StoredResponse, open_store
from vllm_mcp_ext.store.sql import SCHEMA, SqlStore
from vllm_mcp_ext.store.sqlite import SqliteStore


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if binaries() is None:
        unavailable("PostgreSQL is not installed (Debian's postgresql package)")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResponseStore]:
    if request.param == "sqlite":
        backend = open_store(str(tmp_path / "responses.sqlite3"))
    else:
        backend = open_store(request.getfixturevalue("postgres_url"))
    assert backend is not None
    await backend.open()
    try:
        yield backend
    finally:
        for record_id in ("resp_a", "resp_b"):
            await backend.delete(record_id)
        await backend.close()


def record(
    response_id: str = "resp_a", status: str = "completed", created_at: float | None = None
) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        created_at=created_at or time.time(),
        status=status,
        response={"id": response_id, "status": status, "output": []},
        request={"model": "m", "input": "hi"},
        input_items=[{"id": "msg_1", "type": "message"}],
        conversation={"messages": [{"role": "user", "content": "hi"}]},
        previous_response_id=None,
        background=True,
    )


async def test_put_then_get_returns_the_same_record(store: ResponseStore) -> None:
    await store.put(record())
    got = await store.get("resp_a")
    assert got is not None
    assert (got.status, got.response, got.request, got.input_items, got.conversation, got.background) == (
        "completed",
        {"id": "resp_a", "status": "completed", "output": []},
        {"model": "m", "input": "hi"},
        [{"id": "msg_1", "type": "message"}],
        {"messages": [{"role": "user", "content": "hi"}]},
        True,
    )
    assert await store.get("resp_missing") is None


async def test_put_again_updates_status_and_response(store: ResponseStore) -> None:
    await store.put(record(status="in_progress"))
    await store.put(record(status="completed"))
    got = await store.get("resp_a")
    assert got is not None and got.status == "completed" and got.done


async def test_delete_removes_the_response_and_its_events(store: ResponseStore) -> None:
    await store.put(record())
    await store.add_events("resp_a", [(0, {"sequence_number": 0})])
    assert await store.delete("resp_a") is True
    assert await store.get("resp_a") is None
    assert await store.events_after("resp_a", -1) == []
    assert await store.delete("resp_a") is False


async def test_events_come_back_in_order_after_a_sequence_number(store: ResponseStore) -> None:
    await store.put(record(status="in_progress"))
    await store.add_events("resp_a", [(i, {"sequence_number": i}) for i in (2, 0, 1)])
    await store.add_events("resp_a", [(1, {"sequence_number": 1})])  # a repeat is ignored
    assert [e["sequence_number"] for e in await store.events_after("resp_a", 0)] == [1, 2]


async def test_cancel_flag_is_seen(store: ResponseStore) -> None:
    await store.put(record(status="in_progress"))
    assert await store.cancel_requested("resp_a") is False
    await store.request_cancel("resp_a")
    assert await store.cancel_requested("resp_a") is True


async def test_purge_removes_only_old_responses(store: ResponseStore) -> None:
    await store.put(record("resp_a", created_at=time.time() - 7200))
    await store.put(record("resp_b"))
    await store.add_events("resp_a", [(0, {"sequence_number": 0})])
    await store.add_events("resp_b", [(0, {"sequence_number": 0})])
    assert await store.purge(time.time() - 3600) == 1
    assert await store.get("resp_a") is None and await store.get("resp_b") is not None
    assert await store.events_after("resp_a", -1) == [] and len(await store.events_after("resp_b", -1)) == 1


async def test_two_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.open()
    await second.open()
    await first.put(record())
    got = await second.get("resp_a")
    assert got is not None and got.id == "resp_a"
    await first.close()
    await second.close()


def test_store_setting_picks_the_backend(tmp_path: Path) -> None:
    assert open_store("off") is None
    assert isinstance(open_store(str(tmp_path / "x.db")), SqliteStore)
    relative = open_store("sqlite:///rel.db")
    assert isinstance(relative, SqliteStore) and relative.path == Path("rel.db")
    assert "secret" not in repr(open_store("postgresql://u:secret@db.example/x"))
    with pytest.raises(ConfigError):
        open_store("mysql://db/x")


async def test_the_owner_is_kept_and_leaves_with_the_response(store: ResponseStore) -> None:
    owned = record()
    owned.owner = "ab" * 32
    await store.put(owned)
    await store.put(record(status="completed"))  # a later snapshot carries no owner: it stays
    got = await store.get("resp_a")
    assert got is not None and got.owner == "ab" * 32
    await store.delete("resp_a")
    await store.put(record())
    again = await store.get("resp_a")
    assert again is not None and again.owner is None


async def test_a_sqlite_file_from_before_owners_opens_and_its_responses_have_none(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the tables as they were before owners existed
        for statement in SCHEMA[:3]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO mcp_ext_responses (id, created_at, updated_at, status, background, request, "
            "response, input_items) VALUES ('resp_old', 1, 1, 'completed', 0, '{}', '{}', '[]')"
        )
    store = SqliteStore(path)
    await store.open()
    try:
        old = await store.get("resp_old")
        assert old is not None and old.owner is None
        await store.put(record())
        assert await store.get("resp_a") is not None
    finally:
        await store.close()


async def test_credentials_are_kept_by_key_and_replaced_and_outlive_a_purge(store: ResponseStore) -> None:
    key = f"oauth:vault:{time.time()}"  # PostgreSQL's database is shared by the session
    assert await store.get_credentials(key) is None
    await store.put_credentials(key, {"tokens": {"refresh_token": "r1"}})
    await store.put_credentials(key, {"tokens": {"refresh_token": "r2"}})
    await store.purge(time.time() + 1)
    assert await store.get_credentials(key) == {"tokens": {"refresh_token": "r2"}}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_processes_starting_together_on_a_new_database_all_open_it(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``--api-server-count 4`` starts four API server processes at once, each creating the tables
    (the store's at start, the conversations' on first use): none may fail on another's half-made
    table. A fresh database of its own, so the tables do not exist yet."""
    import asyncio

    from vllm_mcp_ext.conversations.store import ConversationStore

    if backend == "sqlite":
        setting = str(tmp_path / "fresh.sqlite3")
    else:
        setting = await _fresh_database(request.getfixturevalue("postgres_url"))
    stores = [open_store(setting) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores if s is not None))
    try:
        conversations = [ConversationStore(s.db) for s in stores if isinstance(s, SqlStore)]
        ids = [f"conv_{i}" for i in range(4)]
        await asyncio.gather(*(c.create(i, {}, []) for c, i in zip(conversations, ids, strict=True)))
        assert [await conversations[0].get(i) is not None for i in ids] == [True] * 4
    finally:
        await asyncio.gather(*(s.close() for s in stores if s is not None))


async def _fresh_database(url: str) -> str:
    """A new, empty database on the test server; its URL."""
    import uuid

    import psycopg

    name = f"fresh_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"
