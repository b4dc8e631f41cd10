"""The Conversations API behind ``/v1/conversations`` and ``conversation`` on ``/v1/responses``.

A conversation is a list of items: those given when it is created or added later, then each
response's input and output items (MCP items too: ``mcp_list_tools``, ``mcp_call``, approval
requests and answers) as the response ends. A response that names a conversation sees its items
before its own ``input``, exactly as if a client had sent them back (``conversations.md``).
"""

from __future__ import annotations

from typing import Any

from openai.types.conversations import Conversation

from vllm_mcp_ext.access import ANONYMOUS, Caller
from vllm_mcp_ext.conversations.store import ConversationStore, StoredConversation
from vllm_mcp_ext.errors import InvalidRequest, NotFound
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.events.items import input_item, page

MAX_ITEMS_PER_CALL = 20  # as OpenAI: at most 20 items when creating or adding


class Conversations:
    """``store`` None (``VLLM_MCP_STORE=off``): every call is a 400. A conversation belongs to the
    caller that created it: with ``--api-key``, another key finds nothing (404, or 400 on
    ``/v1/responses``), as for stored responses."""

    def __init__(self, store: ConversationStore | None):
        self.store = store

    def _store(self) -> ConversationStore:
        if self.store is None:
            raise InvalidRequest("conversations need the response store, which is off (VLLM_MCP_STORE)")
        return self.store

    async def create(self, body: dict[str, Any], caller: Caller = ANONYMOUS) -> dict[str, Any]:
        metadata = _metadata(body.get("metadata"))
        items = _items(body.get("items"), "items", required=False)
        conversation_id = new_id("conv")
        await self._store().create(conversation_id, metadata, items, caller.key_hash)
        return await self.get(conversation_id, caller)

    async def get(self, conversation_id: str, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        return _shown(await self._find(conversation_id, caller))

    async def update(
        self, conversation_id: str, body: dict[str, Any], caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        await self._find(conversation_id, caller)
        await self._store().set_metadata(conversation_id, _metadata(body.get("metadata")))
        return await self.get(conversation_id, caller)

    async def delete(self, conversation_id: str, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        await self._find(conversation_id, caller)
        await self._store().delete(conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def list_items(
        self,
        conversation_id: str,
        *,
        after: str | None,
        limit: int,
        order: str,
        caller: Caller = ANONYMOUS,
    ) -> dict[str, Any]:
        await self._find(conversation_id, caller)
        return page(await self._store().items(conversation_id), after=after, limit=limit, order=order)

    async def add_items(
        self, conversation_id: str, body: dict[str, Any], caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        await self._find(conversation_id, caller)
        items = _items(body.get("items"), "items", required=True)
        await self._store().add_items(conversation_id, items)
        return {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"],
            "last_id": items[-1]["id"],
            "has_more": False,
        }

    async def get_item(
        self, conversation_id: str, item_id: str, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        await self._find(conversation_id, caller)
        for item in await self._store().items(conversation_id):
            if item.get("id") == item_id:
                return item
        raise NotFound(f"No item {item_id!r} in conversation {conversation_id!r}.", param="item_id")

    async def delete_item(
        self, conversation_id: str, item_id: str, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        await self._find(conversation_id, caller)
        if not await self._store().delete_item(conversation_id, item_id):
            raise NotFound(f"No item {item_id!r} in conversation {conversation_id!r}.", param="item_id")
        return await self.get(conversation_id, caller)

    # -- for /v1/responses ------------------------------------------------------------------

    async def history(self, conversation_id: str, caller: Caller = ANONYMOUS) -> list[dict[str, Any]]:
        """The items a response naming the conversation sees before its own input. An unknown id
        (or another key's) is a 400 here, as an unknown ``previous_response_id`` is."""
        found = await self._store().get(conversation_id)
        if found is None or not caller.may_see(found.owner):
            raise InvalidRequest(
                f"Conversation with id {conversation_id!r} not found.",
                param="conversation",
                code="conversation_not_found",
            )
        return await self._store().items(conversation_id)

    async def record(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        """A finished response's input and output items, added in order."""
        await self._store().add_items(conversation_id, [item for item in items if item.get("id")])

    async def _find(self, conversation_id: str, caller: Caller) -> StoredConversation:
        found = await self._store().get(conversation_id)
        if found is None or not caller.may_see(found.owner):
            raise NotFound(f"Conversation with id {conversation_id!r} not found.", param="conversation_id")
        return found


def _shown(conversation: StoredConversation) -> dict[str, Any]:
    return Conversation(
        id=conversation.id,
        object="conversation",
        created_at=conversation.created_at,
        metadata=conversation.metadata,
    ).model_dump(mode="json")


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise InvalidRequest("'metadata' must be an object of strings", param="metadata")
    if len(raw) > 16:
        raise InvalidRequest("'metadata' has at most 16 keys", param="metadata")
    return dict(raw)


def _items(raw: Any, param: str, *, required: bool) -> list[dict[str, Any]]:
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw) or len(raw) > MAX_ITEMS_PER_CALL:
        raise InvalidRequest(f"'{param}' must be an array of 1 to {MAX_ITEMS_PER_CALL} items", param=param)
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest("each item must be an object", param=f"{param}[{i}]")
    return [input_item(item) for item in raw]
