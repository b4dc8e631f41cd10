"""A store that stops taking writes mid-run (issue 14): the response ends ``failed`` with a clear
error, background included; nothing stays ``in_progress``. The fault is real: the SQLite store's
own connection is switched to read-only (``PRAGMA query_only``), so every write fails as on a
full or read-only disk, while reads still work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.unit.test_service import ASK, Scripted, service
from vllm_mcp_ext.responses import service as service_module
from vllm_mcp_ext.responses.service import ResponsesService
from vllm_mcp_ext.types.parts import TextDelta


async def writable(responses: ResponsesService, on: bool) -> None:
    db = responses.store.db  # type: ignore[union-attr]
    await db._call(db._conn.execute, f"PRAGMA query_only={'OFF' if on else 'ON'}")


async def test_a_background_response_ends_failed_when_the_store_stops_taking_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "STORE_RETRY_DELAYS", (0.05, 0.2, 0.5, 1.0))
    gate = asyncio.Event()
    engine = Scripted([[TextDelta("It is"), TextDelta(" 5.")]], gate)
    responses = await service(tmp_path, engine)
    run = await responses.prepare({**ASK, "background": True})
    await responses.start_background(run)
    await asyncio.wait_for(engine.reached_gate.wait(), 5)
    await writable(responses, False)
    gate.set()
    task = responses.stored.running[run.id]
    for _ in range(100):  # the run has ended; the store still takes no writes
        if run.id in responses.stored.failed:
            break
        await asyncio.sleep(0.02)
    seen = await responses.stored.get(run.id)
    assert seen.status == "failed"
    assert "could not be stored" in seen.response["error"]["message"]
    events = [e["type"] async for e in responses.stored.follow(run.id, None)]
    assert events[-1] == "response.failed"
    await writable(responses, True)
    await asyncio.wait_for(task, 10)
    kept = await responses.store.get(run.id)  # type: ignore[union-attr]
    assert kept is not None and kept.status == "failed"
    assert "could not be stored" in kept.response["error"]["message"]
    assert run.id not in responses.stored.failed


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_foreground_response_ends_failed_when_it_cannot_be_stored(
    tmp_path: Path, streamed: bool
) -> None:
    responses = await service(tmp_path, Scripted([[TextDelta("It is"), TextDelta(" 5.")]]))
    await writable(responses, False)
    run = await responses.prepare(ASK)
    if streamed:
        events = [e async for e in responses.stream(run)]
        assert events[-1].type == "response.failed"
        assert "response.completed" not in [e.type for e in events]
        final = events[-1].response
    else:
        final = await responses.complete(run)
    assert final.status == "failed" and final.error is not None
    assert "could not be stored" in final.error.message
