"""Responses from request to storage: run the loop (in the request, or detached in the
background), keep what a later request needs, and answer retrieve, delete, cancel and list.

Streaming, non-streaming and background all take the same path: the wire events of
`AgentLoop.events`. A non-streaming response is the last event's response; a background one
writes its events to the store, where any process can follow them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vllm_mcp_ext import _compat, trace
from vllm_mcp_ext.api.input_items import input_items, page, without_secrets
from vllm_mcp_ext.api.request import parse_request
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest, NotFound
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.events.tracker import SnapshotTracker
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.loop.conversation import Conversation
from vllm_mcp_ext.loop.request import LoopRequest
from vllm_mcp_ext.loop.runner import AgentLoop, Plan
from vllm_mcp_ext.servers import RequestSources, ToolServerRegistry
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.store import ResponseStore, StoredResponse

logger = logging.getLogger(__name__)

FOLLOW_POLL_S = 0.1  # how often a follower looks for new events of a background response
CANCEL_POLL_S = 0.5  # how often a background response checks for a cancel from another process
_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


@dataclass
class Prepared:
    """A validated request with its tools listed: nothing can fail it with a 4xx any more."""

    body: dict[str, Any]
    request: LoopRequest
    plan: Plan
    sources: RequestSources  # closed once the response is over, however it ends
    trace: trace.ResponseTrace | None = None  # timings, with VLLM_MCP_TRACE=1
    stored_request: dict[str, Any] = field(default_factory=dict)  # the body without secrets
    stored_items: list[dict[str, Any]] = field(default_factory=list)  # input items, with ids

    @property
    def id(self) -> str:
        return self.request.template.id


@dataclass
class ResponsesService:
    registry: ToolServerRegistry
    loop: AgentLoop
    seam: _compat.EngineSeam
    settings: Settings
    store: ResponseStore | None
    remote: RemoteMcp | None = None
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    # -- create ---------------------------------------------------------------------------

    async def prepare(self, body: dict[str, Any]) -> Prepared:
        self.seam.check_model(body.get("model"))
        previous = await self._previous(body.get("previous_response_id"))
        request = parse_request(body, self.registry, self.seam.model_name, previous, remote=self.remote)
        sources = RequestSources(use.source for use in request.servers)
        try:
            template = request.template
            template.store = template.store and self.store is not None
            if template.background and not template.store:
                why = (
                    "store is false"
                    if self.store is not None
                    else "the response store is off (VLLM_MCP_STORE)"
                )
                raise InvalidRequest(f"background responses must be stored, but {why}", param="background")
            recording = trace.begin(template.id)  # before listing tools: they are part of it
            plan = await self.loop.prepare(request)
            return Prepared(
                body,
                request,
                plan,
                sources,
                recording,
                stored_request=without_secrets(body) if template.store else {},
                # ids are given once: every save of this response lists the same items
                stored_items=input_items(body.get("input")) if template.store else [],
            )
        except BaseException:
            sources.close()
            raise

    async def events(self, prepared: Prepared) -> AsyncIterator[dict[str, Any]]:
        """The response's wire events; it is stored once it ends (when ``store`` is on)."""
        tracker = SnapshotTracker()
        async for wire in self._wire(prepared, tracker):
            yield wire
        if prepared.request.template.store:
            await self._save(prepared, tracker.snapshot())

    async def _wire(self, prepared: Prepared, tracker: SnapshotTracker) -> AsyncIterator[dict[str, Any]]:
        """The loop's events as wire JSON, fed to ``tracker``: the one path of foreground,
        streamed and background responses. Remote sessions go back however it ends."""
        with prepared.sources:  # pooled remote sessions go back
            async for event in self.loop.events(prepared.request, prepared.plan):
                wire = to_wire(event)
                tracker.feed(wire)
                yield wire
            trace.end(prepared.trace)

    async def complete(self, prepared: Prepared) -> dict[str, Any]:
        final: dict[str, Any] = {}
        async for event in self.events(prepared):
            final = event.get("response", final)
        return final

    async def start_background(self, prepared: Prepared) -> dict[str, Any]:
        """Store the response as queued, run it detached, and answer at once."""
        assert self.store is not None
        queued = to_wire(_queued(prepared))
        try:
            await self._save(prepared, queued)
        except BaseException:
            prepared.sources.close()
            raise
        task = asyncio.create_task(self._run_background(prepared), name=f"response:{prepared.id}")
        self.running[prepared.id] = task
        task.add_done_callback(lambda _: self.running.pop(prepared.id, None))
        return queued

    async def _run_background(self, prepared: Prepared) -> None:
        assert self.store is not None
        tracker = SnapshotTracker()
        watcher = asyncio.create_task(self._watch_cancel(prepared.id, asyncio.current_task()))
        batch: list[tuple[int, dict[str, Any]]] = []
        try:
            async for wire in self._wire(prepared, tracker):
                batch.append((wire["sequence_number"], wire))
                if wire["type"].endswith((".done", ".completed", ".failed", ".in_progress", ".created")):
                    await self._flush(prepared, tracker, batch)
            await self._flush(prepared, tracker, batch)
            await self._save(prepared, tracker.snapshot())
        except asyncio.CancelledError:
            await self.store.add_events(prepared.id, batch)
            await self._save(
                prepared, tracker.cancelled() if tracker.response else to_wire(_queued(prepared))
            )
            logger.info("background response %s cancelled", prepared.id)
        except Exception:
            logger.exception("background response %s failed", prepared.id)
        finally:
            watcher.cancel()
            prepared.sources.close()  # also when cancelled before its first event

    async def _flush(self, prepared: Prepared, tracker: SnapshotTracker, batch: list[Any]) -> None:
        assert self.store is not None
        await self.store.add_events(prepared.id, batch)
        batch.clear()
        if not tracker.done:
            await self._save(prepared, tracker.snapshot(), final=False)

    async def _watch_cancel(self, response_id: str, task: asyncio.Task[Any] | None) -> None:
        assert self.store is not None and task is not None
        while not await self.store.cancel_requested(response_id):
            await asyncio.sleep(CANCEL_POLL_S)
        task.cancel()

    async def _save(self, prepared: Prepared, response: dict[str, Any], final: bool = True) -> None:
        assert self.store is not None
        template = prepared.request.template
        started = time.perf_counter()
        await self.store.put(
            StoredResponse(
                id=template.id,
                created_at=template.created_at,
                status=response["status"],
                response=response,
                request=prepared.stored_request,
                input_items=prepared.stored_items,
                conversation=prepared.request.conversation.to_json() if final else None,
                previous_response_id=template.previous_response_id,
                background=template.background,
            )
        )
        logger.debug("stored %s in %.1f ms", template.id, (time.perf_counter() - started) * 1000)

    async def _previous(self, response_id: Any) -> Conversation | None:
        if response_id is None:
            return None
        if not isinstance(response_id, str):
            raise InvalidRequest("'previous_response_id' must be a string", param="previous_response_id")
        if self.store is None:
            raise InvalidRequest(
                "previous_response_id needs the response store, which is off (VLLM_MCP_STORE)",
                param="previous_response_id",
            )
        record = await self.store.get(response_id)
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
        return Conversation.from_json(record.conversation)

    # -- stored responses -----------------------------------------------------------------

    async def get(self, response_id: str) -> StoredResponse:
        record = None if self.store is None else await self.store.get(response_id)
        if record is None:
            raise NotFound(f"Response with id {response_id!r} not found.", param="response_id")
        return record

    async def follow(self, response_id: str, starting_after: int | None) -> AsyncIterator[dict[str, Any]]:
        """A background response's events after ``starting_after``, then live until it ends."""
        assert self.store is not None
        last = -1 if starting_after is None else starting_after
        while True:
            for event in await self.store.events_after(response_id, last):
                last = event["sequence_number"]
                yield event
                if event["type"] in _TERMINAL_EVENTS:
                    return
            record = await self.store.get(response_id)
            if record is None or (record.done and not await self.store.events_after(response_id, last)):
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    async def delete(self, response_id: str) -> dict[str, Any]:
        record = await self.get(response_id)
        await self._stop(response_id)
        assert self.store is not None
        await self.store.delete(record.id)
        return {"id": record.id, "object": "response", "deleted": True}

    async def cancel(self, response_id: str) -> dict[str, Any]:
        record = await self.get(response_id)
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
                record = await self.get(response_id)
        return (await self.get(response_id)).response

    async def _stop(self, response_id: str) -> bool:
        """Cancel a background response running in this process and wait until it has stopped."""
        task = self.running.get(response_id)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 10)
        return True

    async def list_input_items(
        self, response_id: str, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        record = await self.get(response_id)
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


def _queued(prepared: Prepared) -> Any:
    return ResponseStream(prepared.request.template).snapshot("queued")
