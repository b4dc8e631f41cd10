"""Create responses: foreground, streamed or background, and store their snapshots.

The entry surface every front door uses (the HTTP routes, the in-process Python API)::

    service = ResponsesService(registry, turns, settings, store, remote)
    run = await service.prepare(body, caller)  # 4xx errors (`McpExtError`) raised here, only here
    async for event in service.stream(run): ...  # typed `ResponseStreamEvent`s; stored at the end
    response = await service.complete(run)     # the drained stream: a typed `Response`
    queued = await service.start_background(run)  # stored as queued, runs detached
    service.stored                              # GET, DELETE, cancel, input_items (`stored.py`)
    compacted = await service.compact(body)     # POST /v1/responses/compact (`compact.py`)

Each ``run`` is consumed by exactly one of `stream`, `complete` or `start_background`; each
releases the run's remote MCP sessions however it ends. Streaming, non-streaming and background
take the one path of `AgentLoop.events`; conversion to wire JSON happens at the HTTP boundary
and where events are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent

from vllm_mcp_ext.access import ANONYMOUS, Caller, Grant, Permissions
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.conversations import Conversations, ConversationStore
from vllm_mcp_ext.engine.media import check_media
from vllm_mcp_ext.engine.turns import ModelTurns
from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.elicitation import HeldCalls
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.loop.runner import AgentLoop
from vllm_mcp_ext.observe import trace
from vllm_mcp_ext.policy.operator import OperatorPolicy
from vllm_mcp_ext.responses.compact import Compacted, nothing_to_compact, responses_body
from vllm_mcp_ext.responses.permitted import permitted
from vllm_mcp_ext.responses.request import conversation_id, parse_request
from vllm_mcp_ext.responses.sources import gateway_resolver
from vllm_mcp_ext.responses.stored import CANCEL_POLL_S, StoredResponses
from vllm_mcp_ext.responses.tool_kinds import flat_call_name
from vllm_mcp_ext.servers import RequestSources, ToolServerRegistry
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.store import ResponseStore, StoredResponse
from vllm_mcp_ext.types.request import ResponsesRequest

logger = logging.getLogger(__name__)

# A background response stores its events in batches, and its snapshot, after each of these.
_FLUSH_AFTER = (".done", ".completed", ".failed", ".in_progress", ".created", ".progress")
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
STORE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between tries to store a failed end


def store_failed(exc: BaseException) -> str:
    """The error a response ends with when the store failed (no details that could hold data)."""
    return f"The response could not be stored: the response store failed ({type(exc).__name__})."


class ResponsesService:
    """Responses from request to storage, with no HTTP in sight.

    ``turns`` is the engine path (`ModelTurns`: vLLM's chat-template turns in the server, a
    scripted engine in tests); ``store`` None keeps nothing (``store`` is then false on every
    response); ``remote`` None refuses ``server_url`` tools; ``permissions`` (the tool-server
    file's map) limit what each `Caller` may use, checked in `prepare`; ``policy`` is the
    operator's (guardrails, audit record, time bound: docs/policy.md).
    """

    def __init__(
        self,
        registry: ToolServerRegistry,
        turns: ModelTurns,
        settings: Settings,
        store: ResponseStore | None,
        remote: RemoteMcp | None = None,
        permissions: Permissions | None = None,
        limits: Limits | None = None,
        policy: OperatorPolicy | None = None,
    ):
        self.registry = registry
        self.limits = limits or Limits()
        self.permissions = permissions or Permissions()
        self.own_port: int | None = None  # the API server's port: "http://localhost:<it>/mcp" is ours
        self.turns = turns
        self.settings = settings
        self.store = store
        self.remote = remote
        self.policy = policy or OperatorPolicy()
        held = HeldCalls(self.limits.elicitation_wait, self.limits.max_held_elicitations)
        self.loop = AgentLoop(turns, settings, self.policy, held)
        self.stored = StoredResponses(store, settings)
        db = getattr(store, "db", None)  # the SQL stores' database; conversations live beside
        self.conversations = Conversations(ConversationStore(db) if db is not None else None)

    # -- create ---------------------------------------------------------------------------

    async def prepare(
        self, body: dict[str, Any], caller: Caller = ANONYMOUS, held: ParsableContext | None = None
    ) -> Run:
        """Validate ``body``, load its ``previous_response_id`` and list its tools, as ``caller``
        may: its stored responses only, the servers and tools its grant allows (`Forbidden`).

        ``held``: the finished context of ``previous_response_id`` kept in memory (a WebSocket
        connection's), with the engine's held tokens: no store read, and the first turn
        continues the held tokens instead of tokenizing the whole conversation again."""
        request, context, grant = await self._read(body, caller, held)
        run = await self._planned(request, context, grant)
        run.owner = caller.key_hash
        run.keeps_held = held is not None
        context.session = request.conversation_id or context.session or request.id
        return run

    async def compact(self, body: dict[str, Any], caller: Caller = ANONYMOUS) -> Compacted:
        """``POST /v1/responses/compact`` (responses/compact.py): the model summarizes the
        conversation of ``body`` in one turn; 4xx errors as `prepare` raises them; nothing stored."""
        request, context, grant = await self._read(responses_body(body), caller, None, input_optional=True)
        if not context.messages:
            raise nothing_to_compact()
        run = await self._planned(request, context, grant, measure=False)  # compact measures its turn
        run.owner = caller.key_hash
        try:
            summary = await self.loop.compact(run)
        finally:
            trace.end(run.trace)
            run.release()
        return Compacted.of(context.messages, summary)

    async def _read(
        self,
        body: dict[str, Any],
        caller: Caller,
        held: ParsableContext | None,
        *,
        input_optional: bool = False,
    ) -> tuple[ResponsesRequest, ParsableContext, Grant]:
        """The request, its conversation (held, a conversation's, ``previous_response_id``'s or
        new) with its input read in, and the caller's grant; 4xx errors."""
        self.turns.check_model(body.get("model"))
        if held is not None:
            context = held
        elif (conversation := conversation_id(body)) is not None:
            context = ParsableContext()
            for i, item in enumerate(await self.conversations.history(conversation, caller)):
                context.add_item(flat_call_name(item), f"conversation.items[{i}]")
            context.close_input()
        else:
            context = await self.stored.context(body.get("previous_response_id"), caller)
        grant = self.permissions.grant(caller)

        request = parse_request(
            body,
            self.registry,
            self.turns.model_name,
            context,
            remote=self.remote,
            store_available=self.store is not None,
            gateway=gateway_resolver(self.registry, grant, self.own_port),
            limits=self.limits,
            visible=grant.allows_server,
            input_optional=input_optional,
        )
        check_media(self.turns, context.messages, body.get("input"))
        return request, context, grant

    async def _planned(
        self, request: ResponsesRequest, context: ParsableContext, grant: Grant, *, measure: bool = True
    ) -> Run:
        sources = RequestSources(use.source for use in request.servers)
        try:
            request = permitted(request, grant)
            if request.background and not request.store:
                why = (
                    "store is false"
                    if self.store is not None
                    else "the response store is off (VLLM_MCP_STORE)"
                )
                raise InvalidRequest(f"background responses must be stored, but {why}", param="background")
            # before listing tools: they are part of it
            recording = trace.begin(request.id) if self.settings.trace else None
            plan = await self.loop.prepare(request, context, measure=measure)
            return Run(request, context, plan, sources, recording)
        except BaseException:
            sources.close()
            raise

    async def stream(self, run: Run) -> AsyncGenerator[ResponseStreamEvent, None]:
        """The response's events; it is stored once it ends (when ``store`` is on), before its
        terminal event goes out: a store that fails turns that event into ``response.failed``."""
        saved = False
        async for event in self._events(run):
            if event.type in _TERMINAL and (run.request.store or run.request.conversation_id):
                saved = True
                try:
                    final = to_wire(run.snapshot())
                    if run.request.store:
                        await self._save(run, final)
                    await self._record_conversation(run, final)
                except Exception as exc:
                    logger.exception("response %s could not be stored", run.id)
                    run.stream.fail("server_error", store_failed(exc))
                    for failed in run.stream.take():
                        yield failed
                    continue
            yield event
        if run.request.store and not saved:
            await self._save(run, to_wire(run.snapshot()))

    async def complete(self, run: Run) -> Response:
        """The drained stream: the final response."""
        async for _ in self.stream(run):
            pass
        assert run.stream.final is not None
        return run.stream.final

    async def start_background(self, run: Run) -> Response:
        """Store the response as queued, run it detached, and answer at once."""
        queued = run.snapshot()
        try:
            await self._save(run, to_wire(queued))
        except BaseException:
            run.release()
            raise
        task = asyncio.create_task(self._run_background(run), name=f"response:{run.id}")
        self.stored.running[run.id] = task
        task.add_done_callback(lambda _: self.stored.running.pop(run.id, None))
        return queued

    # -- internals ------------------------------------------------------------------------

    async def _events(self, run: Run) -> AsyncGenerator[ResponseStreamEvent, None]:
        """The loop's events: the one path of foreground, streamed and background responses.
        Remote sessions go back however it ends."""
        try:
            async for event in self.loop.events(run):
                if event.type in _TERMINAL:
                    trace.end(run.trace)  # before the client can see the end and ask for the trace
                yield event
        finally:
            run.release()  # pooled remote sessions go back

    async def _run_background(self, run: Run) -> None:
        assert self.store is not None
        watcher = asyncio.create_task(self._watch_cancel(run.id, asyncio.current_task()))
        batch: list[tuple[int, dict[str, Any]]] = []
        try:
            async with contextlib.aclosing(self._events(run)) as events:  # closed on a store error too
                async for event in events:
                    batch.append((event.sequence_number, to_wire(event)))
                    if event.type.endswith(_FLUSH_AFTER):
                        await self._flush(run, batch)
            await self._flush(run, batch)
            await self._save(run, final := to_wire(run.snapshot()))
            await self._record_conversation(run, final)
        except asyncio.CancelledError:
            await self.store.add_events(run.id, batch)
            await self._save(run, to_wire(run.stream.cancelled() if run.stream.started else run.snapshot()))
            logger.info("background response %s cancelled", run.id)
        except Exception as exc:
            logger.exception("background response %s failed", run.id)
            await self._end_failed(run, batch, store_failed(exc))
        finally:
            watcher.cancel()
            run.release()  # also when cancelled before its first event

    async def _record_conversation(self, run: Run, response: dict[str, Any]) -> None:
        """A finished response's input and output items join its conversation."""
        conversation = run.request.conversation_id
        if conversation is not None and response["status"] in ("completed", "incomplete"):
            await self.conversations.record(conversation, run.request.input_items + response["output"])

    async def _end_failed(self, run: Run, batch: list[tuple[int, dict[str, Any]]], message: str) -> None:
        """A background response whose store failed ends ``failed``: followers and GET see it
        from memory at once, and the store gets it as soon as it takes writes again."""
        assert self.store is not None
        response = to_wire(run.stream.fail("server_error", message))
        batch.extend((e.sequence_number, to_wire(e)) for e in run.stream.take())
        self.stored.failed[run.id] = (response, batch[-1][1])
        for delay in STORE_RETRY_DELAYS:
            await asyncio.sleep(delay)
            try:
                await self.store.add_events(run.id, batch)
                await self._save(run, response)
            except Exception as exc:
                logger.warning("response %s: the store still fails (%s)", run.id, type(exc).__name__)
                continue
            self.stored.failed.pop(run.id, None)
            return

    async def _flush(self, run: Run, batch: list[Any]) -> None:
        assert self.store is not None
        await self.store.add_events(run.id, batch)
        batch.clear()
        if not run.stream.done:
            await self._save(run, to_wire(run.snapshot()), final=False)

    async def _watch_cancel(self, response_id: str, task: asyncio.Task[Any] | None) -> None:
        assert self.store is not None and task is not None
        while not await self.store.cancel_requested(response_id):
            await asyncio.sleep(CANCEL_POLL_S)
        task.cancel()

    async def _save(self, run: Run, response: dict[str, Any], final: bool = True) -> None:
        assert self.store is not None
        request = run.request
        started = time.perf_counter()
        await self.store.put(
            StoredResponse(
                id=request.id,
                created_at=request.created_at,
                status=response["status"],
                response=response,
                request=request.stored_body,
                input_items=request.input_items,
                conversation=run.context.to_json() if final else None,
                previous_response_id=request.previous_response_id,
                background=request.background,
                owner=run.owner,
            )
        )
        logger.debug("stored %s in %.1f ms", request.id, (time.perf_counter() - started) * 1000)
