"""The HTTP door in process (tests/support/asgi.py): the plugin's real routes, error boundary,
store and a real stdio MCP server, a scripted engine, and the real `openai` SDK as client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, CALC, plugin_client
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.types.parts import TextDelta

TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]


@pytest.fixture
async def engine() -> ScriptedTurns:
    return ScriptedTurns([tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("It is "), TextDelta("5.")]])


@pytest.fixture
async def http(engine: ScriptedTurns, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with plugin_client(engine, (CALC,), tmp_path / "responses.sqlite3") as client:
        yield client


async def test_the_sdk_gets_the_mcp_items_and_the_model_sees_the_result(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    r = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS)
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    call = r.output[1]
    assert (call.name, call.arguments, call.output, call.status) == (
        "add",
        '{"a": 2, "b": 3}',
        "5",
        "completed",
    )
    assert r.output_text == "It is 5."
    assert engine.seen[1][-1]["role"] == "tool" and engine.seen[1][-1]["content"] == "5"


async def test_the_sdk_stream_accumulates_the_same_response(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(model="scripted", input="2+3?", tools=TOOLS) as stream:
        types = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [t for t in types if t.startswith("response.mcp_call")] == [
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
    ]
    assert final.output_text == "It is 5." and final.output[1].output == "5"


async def test_the_stream_is_one_server_sent_event_per_event_in_order(http: httpx.AsyncClient) -> None:
    """The raw body: every event as ``event: <type>`` and its compact JSON ``data``, nothing
    between them, sequence numbers without a gap, the script's text in order."""
    body = {"model": "scripted", "input": "2+3?", "tools": TOOLS, "stream": True}
    async with http.stream("POST", "/v1/responses", json=body) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()]).decode()
    *frames, rest = raw.split("\n\n")
    events = []
    for frame in frames:
        kind, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert (
            kind == f"event: {event['type']}" and data == f"data: {json.dumps(event, separators=(',', ':'))}"
        )
        events.append(event)
    assert rest == "" and [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "It is 5."
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"


async def test_a_stored_response_is_retrieved_listed_and_deleted(client: openai.AsyncOpenAI) -> None:
    r = await client.responses.create(model="scripted", input="2+3?", tools=TOOLS)
    again = await client.responses.retrieve(r.id)
    assert again.output_text == r.output_text and [i.id for i in again.output] == [i.id for i in r.output]
    items = await client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"]
    await client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.retrieve(r.id)
    assert info.value.body["code"] == "not_found"


async def test_client_errors_are_openai_errors_with_param_and_code(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="scripted", input="2+3?", tools=[{"type": "mcp", "server_label": "nowhere"}]
        )
    assert (info.value.status_code, info.value.body["param"], info.value.body["code"]) == (
        400,
        "tools[0].server_label",
        "unknown_server_label",
    )
    with pytest.raises(openai.NotFoundError) as missing:
        await client.responses.create(model="other", input="hi", tools=TOOLS)
    assert missing.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b"\xff\xfe", "not valid JSON")],
)
async def test_a_body_that_is_not_a_json_object_is_a_400(
    http: httpx.AsyncClient, body: bytes, message: str
) -> None:
    answer = await http.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error" and error["code"]


async def test_the_servers_route_shows_the_configured_server(http: httpx.AsyncClient) -> None:
    servers = (await http.get("/v1/mcp/servers")).json()["data"]
    assert [(s["label"], s["transport"], s["status"]) for s in servers] == [("calc", "stdio", "ready")]
    tools = (await http.get("/v1/mcp/servers/calc/tools")).json()["data"]
    assert {t["name"] for t in tools} >= {"add", "multiply"}
    assert (await http.get("/v1/mcp/servers/nowhere/tools")).status_code == 404


class FailsOnSecondTurn(ScriptedTurns):
    """The engine refuses the second turn with a client error (as a context that no longer fits)."""

    async def run_turn(self, turn: Any) -> AsyncIterator[Any]:
        if self.seen:
            raise InvalidRequest(
                "the conversation no longer fits the model's context window",
                param="input",
                code="context_length_exceeded",
            )
        async for part in super().run_turn(turn):
            yield part


async def test_a_client_error_after_the_response_started_fails_it_with_the_message(tmp_path: Path) -> None:
    engine = FailsOnSecondTurn([tool_call("add", '{"a": 2, "b": 3}')])
    async with plugin_client(engine, (CALC,), tmp_path / "responses.sqlite3") as http:
        client = openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)
        tools: Any = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
        r = await client.responses.create(model="scripted", input="2+3?", tools=tools)
        assert r.status == "failed" and r.error is not None
        assert r.error.code == "invalid_prompt" and "no longer fits" in r.error.message
        assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call"]  # what ran is kept
        stored = await client.responses.retrieve(r.id)
        assert stored.status == "failed" and stored.error == r.error
