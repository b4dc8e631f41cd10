"""Stored responses: retrieve, follow, delete, cancel, list input items, load a conversation.

Everything here reads the `ResponseStore` (any process may have written it); background
responses running in this process are in `running`, so DELETE and cancel can stop them.

Each query is made as a `Caller`: a response another API key created is, to it, not there (the
same 404, or ``previous_response_not_found``, as a response that never existed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from vllm_mcp_ext.access import ANONYMOUS, Caller
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest, NotFound
from vllm_mcp_ext.events.items import page
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.store import ResponseStore, StoredResponse

logger = logging.getLogger(__name__)

FOLLOW_POLL_S = 0.1  # how often a follower looks for new events of a background response
CANCEL_POLL_S = 0.5  # how often a background response checks for a cancel from another process
_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class StoredResponses:
    def __init__(self, store: ResponseStore | None, settings: Settings):
        self.store = store
        self.settings = settings
        self.running: dict[str, asyncio.Task[None]] = {}  # background responses of this process
        # background responses that ended failed while the store took no writes: their final
        # snapshot and terminal event (wire JSON), until the store has them
        self.failed: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    async def get(self, response_id: str, caller: Caller = ANONYMOUS) -> StoredResponse:
        record = await self._visible(response_id, caller)
        if record is None:
            raise NotFound(f"Response with id {response_id!r} not found.", param="response_id")
        if not record.done and response_id in self.failed:
            response = self.failed[response_id][0]
            return dataclasses.replace(record, status=response["status"], response=response)
        return record

    async def holds(self, response_id: str, caller: Caller = ANONYMOUS) -> bool:
        """Whether the store has this response for ``caller`` (else it may be one of vLLM's own)."""
        return await self._visible(response_id, caller) is not None

    async def _visible(self, response_id: str, caller: Caller) -> StoredResponse | None:
        record = None if self.store is None else await self.store.get(response_id)
        return record if record is not None and caller.may_see(record.owner) else None

    async def context(self, response_id: Any, caller: Caller = ANONYMOUS) -> ParsableContext:
        """The conversation to continue: that of ``previous_response_id``, or a new one."""
        if response_id is None:
            return ParsableContext()
        if not isinstance(response_id, str):
            raise InvalidRequest("'previous_response_id' must be a string", param="previous_response_id")
        if self.store is None:
            raise InvalidRequest(
                "previous_response_id needs the response store, which is off (VLLM_MCP_STORE)",
                param="previous_response_id",
            )
        record = await self._visible(response_id, caller)
        if record is None:
            raise InvalidRequest(
                f"Previous response with id {response_id!r} not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        if not record.done or record.conversation is None:
            raise InvalidRequest(
                f"Previous response {response_id!r} is still {record.status}; wait until it ends",
                param="previous_response_id",
            )
        return ParsableContext.from_json(record.conversation)

    async def follow(self, response_id: str, starting_after: int | None) -> AsyncIterator[dict[str, Any]]:
        """A background response's wire events after ``starting_after``, then live until it ends."""
        assert self.store is not None
        last = -1 if starting_after is None else starting_after
        while True:
            for event in await self.store.events_after(response_id, last):
                last = event["sequence_number"]
                yield event
                if event["type"] in _TERMINAL_EVENTS:
                    return
            if response_id in self.failed:  # ended while the store took no writes
                yield {**self.failed[response_id][1], "sequence_number": last + 1}
                return
            record = await self.store.get(response_id)
            if record is None or (record.done and not await self.store.events_after(response_id, last)):
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    async def delete(self, response_id: str, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        record = await self.get(response_id, caller)
        await self._stop(response_id)
        assert self.store is not None
        await self.store.delete(record.id)
        return {"id": record.id, "object": "response", "deleted": True}

    async def cancel(self, response_id: str, caller: Caller = ANONYMOUS) -> dict[str, Any]:
        record = await self.get(response_id, caller)
        if not record.background:
            raise InvalidRequest("Only background responses can be cancelled.", param="response_id")
        if record.done:
            return record.response
        assert self.store is not None
        await self.store.request_cancel(response_id)
        if not await self._stop(response_id):  # running in another process: it sees the flag
            deadline = time.monotonic() + 10
            while not record.done and time.monotonic() < deadline:
                await asyncio.sleep(CANCEL_POLL_S)
                record = await self.get(response_id, caller)
        return (await self.get(response_id, caller)).response

    async def _stop(self, response_id: str) -> bool:
        """Cancel a background response running in this process and wait until it has stopped."""
        task = self.running.get(response_id)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 10)
        return True

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, order: str, caller: Caller = ANONYMOUS
    ) -> dict[str, Any]:
        record = await self.get(response_id, caller)
        return page(record.input_items, after=after, limit=limit, order=order)

    async def purge_forever(self) -> None:
        """Retention: delete responses older than ``VLLM_MCP_STORE_MAX_AGE``, now and hourly."""
        assert self.store is not None
        while True:
            try:
                removed = await self.store.purge(time.time() - self.settings.store_max_age)
                if removed:
                    logger.info("response store: removed %d responses past retention", removed)
            except Exception as exc:
                logger.warning("response store clean-up failed: %s", exc)
            await asyncio.sleep(min(3600.0, self.settings.store_max_age))
