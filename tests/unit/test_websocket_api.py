"""WebSocket mode of ``/v1/responses`` in process: the plugin's real app served by uvicorn on
loopback (tests/support/asgi.py), a scripted engine, a real stdio MCP server, and the real
`openai` SDK's ``responses.connect()`` as client."""

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
import websockets
from openai.resources.responses.responses import AsyncResponsesConnection

from tests.support.asgi import loopback, plugin_app
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.types.parts import HeldTokens, Part, TextDelta, TurnEnd, TurnUsage

CALCULATOR = Path(__file__).resolve().parents[2] / "examples" / "servers" / "calculator.py"
CALC = StdioServerSpec("calc", sys.executable, (str(CALCULATOR),))
MCP_TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
WEATHER: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


class HoldingTurns(ScriptedTurns):
    """A scripted engine that, like vLLM's, leaves tokens held after each turn (ids that count
    up), and records which held tokens each turn was asked to continue."""

    def __init__(self, turns: list[list[Part]]):
        super().__init__(turns)
        self.given_held: list[HeldTokens | None] = []
        self.gate = asyncio.Event()  # turns wait for it
        self.gate.set()

    async def run_turn(self, turn: Any) -> AsyncIterator[Part]:
        await self.gate.wait()
        self.given_held.append(turn.held)
        self.seen.append([dict(m) for m in turn.messages])
        for part in self.turns.pop(0):
            yield part
        n = len(self.given_held)
        held = HeldTokens(f"prompt {n}", [n], [100 + n])
        yield TurnEnd("stop", TurnUsage(prompt_tokens=10, cached_tokens=4, output_tokens=5), held=held)


@pytest.fixture
async def served(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, HoldingTurns]]:
    turns: list[list[Part]] = getattr(request, "param", None) or [
        tool_call("get_weather", '{"city": "Paris"}'),
        [TextDelta("Sunny "), TextDelta("in Paris.")],
    ]
    engine = HoldingTurns(turns)
    async with (
        plugin_app(engine, (CALC,), tmp_path / "responses.sqlite3", api_keys=("sk-right",)) as app,
        loopback(app) as url,
    ):
        yield url, engine


def sdk(url: str, key: str = "sk-right") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


async def one_response(conn: AsyncResponsesConnection) -> list[Any]:
    events = []
    async for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError("the connection closed before the response ended")


async def test_a_function_round_trip_continues_the_held_tokens_without_the_store(
    served: tuple[str, HoldingTurns],
) -> None:
    url, engine = served
    async with sdk(url).responses.connect() as conn:
        await conn.response.create(model="scripted", input="Weather in Paris?", tools=WEATHER, store=False)
        first = await one_response(conn)
        assert [e.type for e in first] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
        call = first[-1].response.output[0]
        assert (call.name, call.arguments) == ("get_weather", '{"city": "Paris"}')
        await conn.response.create(
            model="scripted",
            previous_response_id=first[-1].response.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
            tools=WEATHER,
            store=False,
        )
        second = await one_response(conn)
    assert second[-1].type == "response.completed"
    assert second[-1].response.output_text == "Sunny in Paris."
    # store=False: only the connection's memory had the first response, held tokens included
    assert engine.given_held == [None, HeldTokens("prompt 1", [1], [101])]
    assert engine.seen[1][-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


@pytest.mark.parametrize("served", [[tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("5.")]]], indirect=True)
async def test_an_mcp_tool_runs_in_one_response(served: tuple[str, HoldingTurns]) -> None:
    url, _ = served
    async with sdk(url).responses.connect() as conn:
        await conn.response.create(model="scripted", input="2+3?", tools=MCP_TOOLS)
        events = await one_response(conn)
    final = events[-1].response
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.output[1].output == "5" and final.output_text == "5."


async def test_a_second_create_while_one_runs_gets_an_error_event(served: tuple[str, HoldingTurns]) -> None:
    url, engine = served
    engine.gate.clear()  # the first response waits in its first turn
    async with sdk(url).responses.connect() as conn:
        await conn.response.create(model="scripted", input="Weather?", tools=WEATHER)
        await conn.response.create(model="scripted", input="again", tools=WEATHER)
        before = []
        async for event in conn:
            before.append(event)
            if event.type == "error":
                break
        engine.gate.set()
        after = await one_response(conn)
    error = before[-1]
    assert (error.status, error.error.type, error.error.code) == (
        400,
        "invalid_request_error",
        "conversation_already_has_active_response",
    )
    # the first response went on, whole (its first events may come before or after the error)
    events = before[:-1] + after
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len(engine.seen) == 1 and engine.seen[0][-1]["content"] == "Weather?"


async def test_generate_false_prepares_a_response_the_next_one_continues(
    served: tuple[str, HoldingTurns],
) -> None:
    url, engine = served
    async with sdk(url).responses.connect() as conn:
        await conn.response.create(model="scripted", input="Weather in Paris?", tools=WEATHER, generate=False)
        warm = await one_response(conn)
        assert [e.type for e in warm] == ["response.created", "response.in_progress", "response.completed"]
        assert warm[-1].response.output == [] and engine.seen == []
        await conn.response.create(
            model="scripted", previous_response_id=warm[-1].response.id, input="In Celsius.", tools=WEATHER
        )
        first = await one_response(conn)
    assert first[-1].type == "response.completed", first[-1]
    assert engine.seen[0][-2:] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "user", "content": "In Celsius."},
    ]


async def test_an_unknown_previous_response_is_the_store_s_not_found(
    served: tuple[str, HoldingTurns],
) -> None:
    url, _ = served
    async with sdk(url).responses.connect() as conn:
        await conn.response.create(model="scripted", input="hi", previous_response_id="resp_nope")
        (event,) = await one_response(conn)
    assert event.type == "error" and event.error.code == "previous_response_not_found"


async def test_steering_is_answered_as_not_supported(served: tuple[str, HoldingTurns]) -> None:
    url, _ = served
    async with sdk(url).responses.connect() as conn:
        await conn.send({"type": "response.steer", "previous_response_id": "resp_x", "input": "faster"})
        event = await conn.recv()
    assert event.type == "response.steer.failed"
    assert event.error.code == "steering_not_supported" and event.steer.input == "faster"


async def test_a_wrong_api_key_is_refused_at_the_handshake(served: tuple[str, HoldingTurns]) -> None:
    url, _ = served
    with pytest.raises(websockets.InvalidStatus) as info:
        async with sdk(url, key="sk-wrong").responses.connect():
            pass
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body)["error"]["code"] == "invalid_api_key"


async def test_the_http_post_on_the_same_path_is_untouched(served: tuple[str, HoldingTurns]) -> None:
    url, _ = served
    r = await sdk(url).responses.create(model="scripted", input="Weather?", tools=WEATHER)
    assert r.output[0].type == "function_call"
    async with httpx.AsyncClient() as http:
        plain_get = await http.get(f"{url}/v1/responses", headers={"Authorization": "Bearer sk-right"})
    assert plain_get.status_code == 405  # HTTP only knows POST there; the WebSocket route is not HTTP


async def test_connections_past_the_limit_are_refused() -> None:
    engine = HoldingTurns([])
    async with plugin_app(engine, limits=Limits(ws_max_connections=1)) as app, loopback(app) as url:
        async with sdk(url).responses.connect():
            with pytest.raises(websockets.InvalidStatus) as info:
                async with sdk(url).responses.connect():
                    pass
        assert info.value.response.status_code == 429
        async with sdk(url).responses.connect():  # the first one closed: room again
            pass


async def test_a_connection_past_its_lifetime_is_told_and_closed() -> None:
    engine = HoldingTurns([])
    async with (
        plugin_app(engine, limits=Limits(ws_max_lifetime=0.2)) as app,
        loopback(app) as url,
        sdk(url).responses.connect() as conn,
    ):
        event = await conn.recv()
        assert event.type == "error" and event.error.code == "websocket_connection_limit_reached"
        with pytest.raises(websockets.ConnectionClosedOK):
            await conn.recv()
