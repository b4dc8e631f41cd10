"""A response's MCP calls answering their server (`loop.server_requests`), through the plugin's
real app with a scripted engine and the asking server (tests/e2e/servers/asking.py) over stdio:
progress events for a client that opted in and none for a stock one; sampling on the response's
engine, capped and counted in its usage."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.servers import asking
from tests.support.asgi import BASE_URL, plugin_client
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.client_features import ClientFeatures, SamplingPolicy
from vllm_mcp_ext.types.parts import Part, TextDelta, TurnEnd, TurnUsage

# the asking server samples and logs as 2025-11-25 does (deprecated in 2026-07-28)
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
ASKING = Path(asking.__file__)
SAMPLED = "hello from the engine"


class AskingModel(ScriptedTurns):
    """Calls ``tool`` of server ``asking`` first, then answers; a turn without tools (a sampling
    turn) answers `SAMPLED` with 7 output tokens."""

    def __init__(self, tool: str):
        super().__init__([])
        self.tool = tool
        self.sampling_turns: list[Any] = []

    async def run_turn(self, turn: Any) -> AsyncIterator[Part]:
        if not turn.tools:
            self.sampling_turns.append(turn)
            yield TextDelta(SAMPLED)
            yield TurnEnd("stop", TurnUsage(prompt_tokens=20, output_tokens=7))
            return
        if not any(m.get("role") == "tool" for m in turn.messages):
            for part in tool_call(self.tool, "{}"):
                yield part
            yield TurnEnd("tool_calls", TurnUsage(prompt_tokens=10, output_tokens=3))
            return
        yield TextDelta("done")
        yield TurnEnd("stop", TurnUsage(prompt_tokens=30, output_tokens=2))


def spec(features: ClientFeatures = ClientFeatures()) -> StdioServerSpec:  # noqa: B008
    return StdioServerSpec(label="asking", command=sys.executable, args=(str(ASKING),), features=features)


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "scripted",
        "input": "go",
        "tools": [{"type": "mcp", "server_label": "asking", "require_approval": "never"}],
        **extra,
    }


async def events_of(http: httpx.AsyncClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    async with http.stream("POST", "/v1/responses", json={**request, "stream": True}, timeout=60) as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


MCP_CALL_EVENTS = [
    "response.output_item.added",
    "response.mcp_call.in_progress",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
]


async def test_a_client_that_opted_in_gets_progress_events_while_the_call_runs() -> None:
    async with plugin_client(AskingModel("count"), (spec(),)) as http:
        events = await events_of(http, body(include=["mcp_call.progress"]))
    types = [e["type"] for e in events]
    start = types.index("response.mcp_call_arguments.done") + 1
    assert types[start : start + 5] == [
        *["response.mcp_call.progress"] * 3,
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    call_id = events[start + 3]["item_id"]
    progress = [
        (e["item_id"], e["output_index"], e["progress"], e["total"], e["message"])
        for e in events[start : start + 3]
    ]
    index = events[start + 3]["output_index"]
    assert progress == [(call_id, index, n, 3, f"step {n}") for n in (1, 2, 3)]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = events[start + 4]["item"]
    assert done["output"] == "counted to 3" and done["progress"] == {
        "progress": 3,
        "total": 3,
        "message": "step 3",
    }


async def test_a_stock_client_gets_the_stream_it_knows(tmp_path: Path) -> None:
    async with plugin_client(AskingModel("count"), (spec(),)) as http:
        events = await events_of(http, body())
        client = openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="x", http_client=http)
        async with client.responses.stream(**body()) as stream:  # type: ignore[call-overload]
            final = await stream.get_final_response()
    types = [e["type"] for e in events]
    assert "response.mcp_call.progress" not in types
    start = types.index("response.output_item.added", types.index("response.mcp_list_tools.completed"))
    assert types[start : start + 7] == [
        *MCP_CALL_EVENTS,
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    call = next(item for item in final.output if item.type == "mcp_call")
    assert call.output == "counted to 3" and "progress" not in call.model_dump()


async def test_sampling_runs_on_the_responses_engine_within_the_cap_and_counts_in_usage() -> None:
    model = AskingModel("greet")
    features = ClientFeatures(sampling=SamplingPolicy(max_tokens=16))
    async with plugin_client(model, (spec(features),)) as http:
        answer = (await http.post("/v1/responses", json=body(), timeout=60)).json()
    call = next(item for item in answer["output"] if item["type"] == "mcp_call")
    assert call["output"] == f"sampled by scripted (endTurn): {SAMPLED!r}"
    [turn] = model.sampling_turns
    assert (turn.max_tokens, turn.model, turn.tool_choice) == (16, "scripted", "none")
    assert turn.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": asking.SAMPLING_PROMPT},
    ]
    usage = answer["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (10 + 20 + 30, 3 + 7 + 2)


async def test_sampling_is_capped_by_what_is_left_of_the_responses_budget() -> None:
    model = AskingModel("greet")
    features = ClientFeatures(sampling=SamplingPolicy(max_tokens=16, max_tokens_per_response=1))
    async with plugin_client(model, (spec(features),)) as http:
        first = (await http.post("/v1/responses", json=body(), timeout=60)).json()
    call = next(item for item in first["output"] if item["type"] == "mcp_call")
    # the first sampling fits (1 token left, capped to it); it spends the budget
    assert model.sampling_turns[0].max_tokens == 1
    assert call["output"].startswith("sampled by scripted")


async def test_a_server_without_sampling_is_refused_and_the_engine_is_not_asked() -> None:
    model = AskingModel("greet")
    async with plugin_client(model, (spec(),)) as http:
        answer = (await http.post("/v1/responses", json=body(), timeout=60)).json()
    call = next(item for item in answer["output"] if item["type"] == "mcp_call")
    assert call["output"].startswith("sampling refused") and model.sampling_turns == []


async def test_a_background_responses_snapshot_shows_the_running_calls_latest_progress(
    tmp_path: Path,
) -> None:
    async with plugin_client(AskingModel("slow_steps"), (spec(),), store=tmp_path / "store.sqlite3") as http:
        created = await http.post("/v1/responses", json=body(include=["mcp_call.progress"], background=True))
        response_id = created.json()["id"]
        calls: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while not (calls and calls[0].get("progress")):
                await asyncio.sleep(0.05)
                snapshot = (await http.get(f"/v1/responses/{response_id}")).json()
                calls = [item for item in snapshot["output"] if item["type"] == "mcp_call"]
        assert snapshot["status"] == "in_progress" and calls[0]["status"] == "calling", calls
        assert calls[0]["progress"] == {"progress": 1, "total": 10, "message": "started"}
        cancelled = (await http.post(f"/v1/responses/{response_id}/cancel")).json()
    assert cancelled["status"] == "cancelled"
