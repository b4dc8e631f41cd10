"""Conversations in the response store's database: two tables of their own, added beside the
responses' (created on first use, so an existing store file or database gains them as it is).

Items are rows numbered per conversation; an item is added in the same transaction that reads the
next number, so two processes sharing the store never interleave one conversation's numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from vllm_mcp_ext.store.sql import Database

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS mcp_ext_conversations (
        id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        metadata TEXT NOT NULL,
        owner TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS mcp_ext_conversation_items (
        conversation_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    )""",
)
_CREATE = "INSERT INTO mcp_ext_conversations (id, created_at, metadata, owner) VALUES (?, ?, ?, ?)"
_GET = "SELECT id, created_at, metadata, owner FROM mcp_ext_conversations WHERE id = ?"
_SET_METADATA = "UPDATE mcp_ext_conversations SET metadata = ? WHERE id = ?"
_DELETE = "DELETE FROM mcp_ext_conversations WHERE id = ?"
_DELETE_ITEMS = "DELETE FROM mcp_ext_conversation_items WHERE conversation_id = ?"
_ADD_ITEM = """INSERT INTO mcp_ext_conversation_items (conversation_id, seq, item_id, item)
    SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ? FROM mcp_ext_conversation_items WHERE conversation_id = ?"""
_ITEMS = "SELECT item FROM mcp_ext_conversation_items WHERE conversation_id = ? ORDER BY seq"
_DELETE_ITEM = "DELETE FROM mcp_ext_conversation_items WHERE conversation_id = ? AND item_id = ?"


@dataclass(frozen=True)
class StoredConversation:
    id: str
    created_at: int
    metadata: dict[str, str]
    owner: str | None = None  # the key hash of the caller that created it (never the key)


class ConversationStore:
    """Conversations and their items, on the response store's `Database`."""

    def __init__(self, db: Database):
        self.db = db
        self._ready = False

    async def _tables(self) -> None:
        if not self._ready:
            await self.db.run([(statement, ()) for statement in SCHEMA])
            self._ready = True

    async def create(
        self,
        conversation_id: str,
        metadata: dict[str, str],
        items: list[dict[str, Any]],
        owner: str | None = None,
    ) -> None:
        await self._tables()
        statements = [(_CREATE, (conversation_id, time.time(), json.dumps(metadata), owner))]
        statements += [_add(conversation_id, item) for item in items]
        await self.db.run(statements)

    async def get(self, conversation_id: str) -> StoredConversation | None:
        await self._tables()
        rows = await self.db.rows(_GET, (conversation_id,))
        if not rows:
            return None
        cid, created, metadata, owner = rows[0]
        return StoredConversation(cid, int(created), json.loads(metadata), owner)

    async def set_metadata(self, conversation_id: str, metadata: dict[str, str]) -> None:
        await self._tables()
        await self.db.run([(_SET_METADATA, (json.dumps(metadata), conversation_id))])

    async def delete(self, conversation_id: str) -> bool:
        await self._tables()
        return await self.db.run([(_DELETE_ITEMS, (conversation_id,)), (_DELETE, (conversation_id,))]) > 0

    async def add_items(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        await self._tables()
        if items:
            await self.db.run([_add(conversation_id, item) for item in items])

    async def items(self, conversation_id: str) -> list[dict[str, Any]]:
        await self._tables()
        return [json.loads(row[0]) for row in await self.db.rows(_ITEMS, (conversation_id,))]

    async def delete_item(self, conversation_id: str, item_id: str) -> bool:
        await self._tables()
        return await self.db.run([(_DELETE_ITEM, (conversation_id, item_id))]) > 0


def _add(conversation_id: str, item: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    return _ADD_ITEM, (conversation_id, item["id"], json.dumps(item), conversation_id)
