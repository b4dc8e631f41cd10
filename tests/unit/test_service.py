"""The Responses service with a scripted engine and a real SQLite store: the entry surface every
front door uses (prepare, stream, complete, start_background, stored queries), typed end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent

from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest, NotFound
from vllm_mcp_ext.events.wire import to_wire
from vllm_mcp_ext.responses.service import ResponsesService
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.store import open_store
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta, TurnEnd, TurnUsage

ASK = {"model": "scripted", "input": "2+3?"}


class Scripted:
    """Plays back parts, one list per turn; a turn waits on ``gate`` before its last part."""

    model_name = "scripted"

    def __init__(self, turns: list[list[Part]], gate: asyncio.Event | None = None):
        self.turns = list(turns)
        self.gate = gate
        self.seen: list[list[dict[str, Any]]] = []
        self.reached_gate = asyncio.Event()

    def check_model(self, name: str | None) -> None:
        if name not in (None, "scripted"):
            raise NotFound(f"The model `{name}` does not exist.", param="model", code="model_not_found")

    async def run_turn(self, turn: Any) -> AsyncIterator[Part]:
        self.seen.append(list(turn.messages))
        parts = self.turns.pop(0)
        for part in parts[:-1]:
            yield part
        if self.gate is not None:
            self.reached_gate.set()
            await self.gate.wait()
        yield parts[-1]
        yield TurnEnd("stop", TurnUsage(prompt_tokens=3, output_tokens=2))


async def service(
    tmp_path: Path | None, engine: Scripted, settings: Settings | None = None
) -> ResponsesService:
    settings = settings or Settings()
    store = open_store(str(tmp_path / "responses.sqlite3")) if tmp_path is not None else None
    if store is not None:
        await store.open()
    return ResponsesService(ToolServerRegistry((), settings), engine, settings, store)


async def test_complete_is_the_drained_stream_and_is_stored(tmp_path: Path) -> None:
    engine = Scripted([[TextDelta("It is "), TextDelta("5.")], [TextDelta("5.")]])
    responses = await service(tmp_path, engine)
    run = await responses.prepare({**ASK, "instructions": "Be brief."})
    streamed: list[ResponseStreamEvent] = [e async for e in responses.stream(run)]
    assert [e.sequence_number for e in streamed] == list(range(len(streamed)))
    final = streamed[-1]
    assert final.type == "response.completed" and isinstance(final.response, Response)
    assert final.response.output_text == "It is 5."
    assert engine.seen[0][0] == {"role": "system", "content": "Be brief."}
    stored = await responses.stored.get(run.id)
    assert stored.response == to_wire(final.response)
    again = await responses.prepare({**ASK, "input": "and again?", "previous_response_id": run.id})
    response = await responses.complete(again)
    assert isinstance(response, Response) and response.status == "completed"
    assert response.previous_response_id == run.id
    assert [m["role"] for m in engine.seen[1]] == ["user", "assistant", "user"]  # no instructions
    items = await responses.stored.input_items(again.id, after=None, limit=20, order="asc")
    assert [i["content"][0]["text"] for i in items["data"]] == ["and again?"]


async def test_client_errors_are_raised_by_prepare_before_anything_runs() -> None:
    responses = await service(None, Scripted([]))
    with pytest.raises(NotFound):
        await responses.prepare({**ASK, "model": "other"})
    with pytest.raises(InvalidRequest) as background:
        await responses.prepare({**ASK, "background": True})
    assert background.value.param == "background"
    with pytest.raises(InvalidRequest) as previous:
        await responses.prepare({**ASK, "previous_response_id": "resp_x"})
    assert previous.value.param == "previous_response_id"


async def test_a_cancelled_background_response_is_stored_with_its_unfinished_items_incomplete(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    engine = Scripted([[TextDelta("It is"), TextDelta(" 5.")]], gate)
    responses = await service(tmp_path, engine)
    run = await responses.prepare({**ASK, "background": True})
    queued = await responses.start_background(run)
    assert queued.status == "queued" and queued.output == []
    await asyncio.wait_for(engine.reached_gate.wait(), 5)
    cancelled = await responses.stored.cancel(run.id)
    assert cancelled["status"] == "cancelled"
    assert [(i["type"], i["status"]) for i in cancelled["output"]] == [("message", "incomplete")]
    events = [e async for e in responses.stored.follow(run.id, None)]
    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert (await responses.stored.get(run.id)).status == "cancelled"


async def test_a_function_call_ends_the_response_for_the_client_to_answer() -> None:
    engine = Scripted([[ToolCallDelta(0, "lookup"), ToolCallDelta(0, arguments='{"q": "x"}')]])
    responses = await service(None, engine)
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    response = await responses.complete(await responses.prepare({**ASK, "tools": [tool]}))
    assert response.store is False  # no store: nothing kept
    assert [(i.type, i.status) for i in response.output] == [("function_call", "completed")]


async def test_the_trace_is_served_once_the_client_sees_the_end() -> None:
    """A benchmark asks for the trace the moment the terminal event arrives and may close the
    stream there; the trace must not wait for the generator to be resumed after it."""
    from vllm_mcp_ext.observe import trace

    responses = await service(None, Scripted([[TextDelta("5.")]]), Settings(trace=True))
    run = await responses.prepare(ASK)
    events = responses.stream(run)
    async for event in events:
        if event.type == "response.completed":
            break
    recorded = trace.finished(run.id)
    await events.aclose()
    assert recorded is not None and recorded.end >= recorded.start
