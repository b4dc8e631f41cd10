"""WebSocket mode of ``/v1/responses`` against a real vLLM server with the plugin, through the
real `openai` SDK's ``responses.connect()``: function and MCP tools, and a dropped connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.resources.responses.responses import ResponsesConnection

from tests.e2e.test_conversations import ASK, fresh, wait_for
from tests.e2e.test_mcp_loop import mcp
from tests.support.scripts import WEATHER_TOOL

pytestmark = pytest.mark.e2e

WEATHER: dict[str, Any] = {"type": "function", **WEATHER_TOOL["function"]}
TOOLS = [mcp("calc"), WEATHER]  # the tools of the tiny model's "function_tool" script
TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def one_response(conn: ResponsesConnection) -> list[Any]:
    events = []
    for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError("the connection closed before the response ended")


def test_a_function_round_trip_continues_the_engine_s_tokens(
    client: openai.OpenAI, beyond_spec_client: openai.OpenAI, vllm_server: str
) -> None:
    with client.responses.connect() as conn:
        conn.response.create(
            model="tiny", input="What is the weather in Paris?", tools=TOOLS, temperature=0, store=False
        )
        first = one_response(conn)
        assert first[-1].type == "response.completed", first[-1]
        listed, call = first[-1].response.output
        assert listed.type == "mcp_list_tools"
        assert (call.type, call.name, call.arguments) == ("function_call", "get_weather", '{"city": "Paris"}')
        conn.response.create(
            model="tiny",
            previous_response_id=first[-1].response.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
            tools=TOOLS,
            temperature=0,
            store=False,
        )
        second = one_response(conn)
    assert second[-1].type == "response.completed", second[-1]
    assert [i.type for i in second[-1].response.output] == ["message"]  # tools listed already
    # store=False: the connection remembered the first response, and the engine's tokens with it
    (turn,) = httpx.get(f"{vllm_server}/v1/mcp/traces/{second[-1].response.id}").json()["turns"]
    assert turn["continued"] is True and turn["held_tokens"] > 0
    # over HTTP the same follow-up has nothing to continue: the first response was not stored
    # (the plugin does not hold it, so vLLM's own handler answers: not found)
    with pytest.raises(openai.NotFoundError):  # stock vLLM's 404 body is not Open Responses'
        beyond_spec_client.responses.create(
            model="tiny", previous_response_id=first[-1].response.id, input="hi"
        )


def test_an_mcp_tool_runs_in_a_response_over_the_socket(client: openai.OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="tiny", input=ASK, tools=[mcp("calc")], temperature=0)
        events = one_response(conn)
    final = events[-1].response
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.output[1].output == "5" and final.output_text == "2 plus 3 is 5."
    # the HTTP door on the same path serves the stored response
    assert client.responses.retrieve(final.id).output_text == "2 plus 3 is 5."


def test_a_dropped_connection_cancels_the_running_call(client: openai.OpenAI, slow_marker: Path) -> None:
    fresh(slow_marker)
    with client.responses.connect() as conn:
        conn.response.create(model="tiny", input=ASK, tools=[mcp("slowcalc")], temperature=0)
        for event in conn:
            if event.type == "response.mcp_call_arguments.done":
                wait_for(slow_marker.with_suffix(".started").exists, 20, "the slow tool to start")
                break  # leave while the call runs: the connection closes
    # well before the 20 s call timeout would cancel it anyway
    wait_for(slow_marker.with_suffix(".cancelled").exists, 8, "the MCP server to see the cancellation")
