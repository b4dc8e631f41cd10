"""The MCP tool loop end to end: real vLLM + plugin, real MCP servers, the real openai SDK."""

from __future__ import annotations

import json
import time
from itertools import groupby
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e


def mcp(label: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "require_approval": "never", **extra}


def create(client: openai.OpenAI, text: str, tools: list[dict[str, Any]], **kw: Any):
    return client.responses.create(model="tiny", input=text, tools=tools, temperature=0, **kw)


def shape(response) -> list[tuple[str, ...]]:
    """Output items without ids: what must match between runs and between stream and not."""
    out = []
    for item in response.output:
        if item.type == "mcp_list_tools":
            out.append((item.type, item.server_label, tuple(t.name for t in item.tools), item.error))
        elif item.type == "mcp_call":
            err = item.error.type if item.error else None
            out.append(
                (item.type, item.server_label, item.name, item.arguments, item.output, item.status, err)
            )
        elif item.type == "message":
            out.append((item.type, item.content[0].text))
        else:
            out.append((item.type, getattr(item, "name", ""), getattr(item, "arguments", "")))
    return out


CALC_TOOLS = ("add", "multiply", "divide", "crash")


def test_one_call_runs_the_tool_and_the_model_answers(client: openai.OpenAI) -> None:
    r = create(client, "What is 2 plus 3?", [mcp("calc")])
    assert r.status == "completed"
    assert shape(r) == [
        ("mcp_list_tools", "calc", CALC_TOOLS, None),
        ("mcp_call", "calc", "add", '{"a": 2, "b": 3}', "5", "completed", None),
        ("message", "2 plus 3 is 5."),
    ]
    assert r.output[0].tools[0].annotations == {"readOnlyHint": True}
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_two_sequential_calls_feed_each_other(client: openai.OpenAI) -> None:
    r = create(client, "Multiply 6 by 7, then add 8.", [mcp("calc")])
    assert shape(r)[1:] == [
        ("mcp_call", "calc", "multiply", '{"a": 6, "b": 7}', "42", "completed", None),
        ("mcp_call", "calc", "add", '{"a": 42, "b": 8}', "50", "completed", None),
        ("message", "The answer is 50."),
    ]


def test_two_parallel_calls_over_http_and_sse(client: openai.OpenAI) -> None:
    r = create(client, "Save a note about Peru and tell me its capital.", [mcp("notes"), mcp("facts")])
    assert [s[:2] for s in shape(r)[:2]] == [("mcp_list_tools", "notes"), ("mcp_list_tools", "facts")]
    assert shape(r)[2:] == [
        ("mcp_call", "notes", "add_note", '{"text": "Peru"}', "saved: Peru", "completed", None),
        ("mcp_call", "facts", "capital", '{"country": "Peru"}', "Lima", "completed", None),
        ("message", "Saved. The capital of Peru is Lima."),
    ]


def test_forced_tool_choice_calls_that_tool(client: openai.OpenAI) -> None:
    r = create(
        client,
        "Use the multiply tool on 4 and 5.",
        [mcp("calc")],
        tool_choice={"type": "mcp", "server_label": "calc", "name": "multiply"},
    )
    assert shape(r)[1:] == [
        ("mcp_call", "calc", "multiply", '{"a": 4, "b": 5}', "20", "completed", None),
        ("message", "4 times 5 is 20."),
    ]


def test_failing_tool_is_a_failed_call_the_model_sees(client: openai.OpenAI) -> None:
    r = create(client, "Divide 1 by 0.", [mcp("calc")])
    call = r.output[1]
    assert (call.type, call.name, call.status) == ("mcp_call", "divide", "failed")
    assert call.error.type == "mcp_tool_execution_error"
    assert "division by zero" in json.dumps(call.error.content)
    assert r.output_text == "I cannot divide by zero."  # the model saw the error text


def test_bad_arguments_fail_the_call_and_the_model_retries(client: openai.OpenAI) -> None:
    r = create(client, "Add two and three.", [mcp("calc")])
    first, second = r.output[1], r.output[2]
    assert first.status == "failed" and first.error.type == "mcp_protocol_error"
    assert first.error.code == -32602 and "'two' is not of type 'integer'" in first.error.message
    assert (second.name, second.output, second.status) == ("add", "5", "completed")
    assert r.output_text == "2 plus 3 is 5."


def test_unknown_tool_fails_the_call_and_the_loop_goes_on(client: openai.OpenAI) -> None:
    r = create(client, "Subtract 3 from 5.", [mcp("calc")])
    call = r.output[1]
    assert (call.name, call.status, call.error.code) == ("subtract", "failed", -32601)
    assert r.output_text == "I cannot subtract."


def test_dead_server_is_reported_and_the_request_goes_on(client: openai.OpenAI) -> None:
    r = create(client, "What is 2 plus 3?", [mcp("ghost"), mcp("calc")])
    ghost = r.output[0]
    assert ghost.type == "mcp_list_tools" and ghost.server_label == "ghost"
    assert ghost.tools == [] and "unavailable" in ghost.error
    assert r.status == "completed" and r.output_text == "2 plus 3 is 5."


def test_server_that_dies_mid_call_fails_the_call_then_comes_back(client: openai.OpenAI) -> None:
    r = create(client, "Crash the calculator.", [mcp("calc")])
    call = r.output[1]
    assert (call.name, call.status, call.error.type) == ("crash", "failed", "mcp_protocol_error")
    assert r.status == "completed"
    again = create(client, "What is 2 plus 3?", [mcp("calc")])  # the stdio server is restarted
    assert again.output[1].output == "5"


def test_colliding_tool_names_stay_distinct(client: openai.OpenAI) -> None:
    r = create(client, "Add 2 and 3 with the facts server.", [mcp("calc"), mcp("facts")])
    call = r.output[2]
    assert (call.server_label, call.name, call.output) == ("facts", "add", "2 + 3 = 5")
    assert r.output_text == "The facts server says 2 + 3 = 5."


def test_function_tool_call_ends_the_response_for_the_client(client: openai.OpenAI) -> None:
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    r = create(client, "What is the weather in Paris?", [mcp("calc"), weather])
    assert r.status == "completed"
    call = r.output[-1]
    assert (call.type, call.name, json.loads(call.arguments)) == (
        "function_call",
        "get_weather",
        {"city": "Paris"},
    )
    assert call.call_id


def test_allowed_tools_read_only_filter(client: openai.OpenAI) -> None:
    r = create(client, "What is 4 plus 4?", [mcp("calc", allowed_tools={"read_only": True})])
    assert r.output[0].tools and tuple(t.name for t in r.output[0].tools) == ("add", "multiply", "divide")
    assert r.output[1].output == "8" and r.output_text == "4 plus 4 is 8."


def test_instructions_reach_the_model(client: openai.OpenAI) -> None:
    r = create(client, "What is 3 times 3?", [mcp("calc")], instructions="Answer briefly.")
    assert r.output[1].output == "9" and r.output_text == "9."


def test_tool_choice_none_calls_no_tool(client: openai.OpenAI) -> None:
    r = create(client, "What is 2 plus 3?", [mcp("calc")], tool_choice="none", max_output_tokens=16)
    assert not [i for i in r.output if i.type == "mcp_call"]


# -- streaming --------------------------------------------------------------------------


def collapse(types: list[str]) -> list[str]:
    return [t for t, _ in groupby(types)]


def test_streamed_multi_turn_events_in_order_and_same_output(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="tiny", input="Multiply 6 by 7, then add 8.", tools=[mcp("calc")], temperature=0
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    call = [
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    assert collapse([e.type for e in events]) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        *call,
        *call,
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    indexes = [e.output_index for e in events if hasattr(e, "output_index")]
    assert indexes == sorted(indexes) and indexes[-1] == 3
    plain = create(client, "Multiply 6 by 7, then add 8.", [mcp("calc")])
    assert shape(final) == shape(plain)
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_streamed_text_deltas_add_up(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="tiny", input="What is 2 plus 3?", tools=[mcp("calc")], temperature=0
    ) as stream:
        events = list(stream)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    args = "".join(e.delta for e in events if e.type == "response.mcp_call_arguments.delta")
    assert text == "2 plus 3 is 5." and json.loads(args) == {"a": 2, "b": 3}


# -- bad input ----------------------------------------------------------------------------


def test_unknown_server_label_is_a_400_listing_configured_labels(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        create(client, "hi", [mcp("nope")])
    err = info.value.body
    assert err["param"] == "tools[0].server_label" and err["code"] == "unknown_server_label"
    for label in ("calc", "notes", "facts", "late", "ghost"):
        assert label in err["message"]


def test_tool_choice_naming_a_tool_not_allowed_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        create(
            client,
            "hi",
            [mcp("calc", allowed_tools=["add"])],
            tool_choice={"type": "mcp", "server_label": "calc", "name": "multiply"},
        )
    assert info.value.body["param"] == "tool_choice.name"


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        (mcp("calc", server_url="http://example.com/mcp"), "tools[0].server_url"),
        (mcp("calc", connector_id="connector_gmail"), "tools[0].connector_id"),
    ],
)
def test_unsupported_mcp_options_are_a_clear_400(client: openai.OpenAI, tool: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        create(client, "hi", [tool])
    assert info.value.body["param"] == param and info.value.status_code == 400


def test_unknown_model_is_a_404_as_in_stock_vllm(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="gpt-nope", input="hi", tools=[mcp("calc")])
    assert info.value.body["param"] == "model" and info.value.body["code"] == "model_not_found"


def test_malformed_json_body_is_a_400(vllm_server: str) -> None:
    r = httpx.post(
        f"{vllm_server}/v1/responses", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


# -- server status routes ----------------------------------------------------------------


def test_servers_route_reports_status_and_errors(vllm_server: str) -> None:
    data = {s["label"]: s for s in httpx.get(f"{vllm_server}/v1/mcp/servers").json()["data"]}
    assert data["calc"]["transport"] == "stdio" and data["calc"]["status"] == "ready"
    assert data["notes"]["transport"] == "streamable_http" and data["notes"]["tool_count"] == 2
    assert data["facts"]["transport"] == "sse" and data["facts"]["tool_count"] == 2
    assert data["ghost"]["status"] == "error" and data["ghost"]["last_error"]


def test_server_tools_route_lists_schema_and_annotations(vllm_server: str) -> None:
    tools = httpx.get(f"{vllm_server}/v1/mcp/servers/calc/tools").json()["data"]
    add = next(t for t in tools if t["name"] == "add")
    assert add["input_schema"]["required"] == ["a", "b"] and add["annotations"] == {"readOnlyHint": True}
    assert httpx.get(f"{vllm_server}/v1/mcp/servers/nope/tools").status_code == 404


def test_tools_list_changed_refreshes_the_server_tools(vllm_server: str) -> None:
    deadline = time.monotonic() + 30
    names: list[str] = []
    while time.monotonic() < deadline:
        names = [t["name"] for t in httpx.get(f"{vllm_server}/v1/mcp/servers/late/tools").json()["data"]]
        if "late_tool" in names:
            break
        time.sleep(0.5)
    assert names == ["early_tool", "late_tool"]


def test_required_tool_choice_makes_a_call(client: openai.OpenAI) -> None:
    r = create(client, "What is 2 plus 3?", [mcp("calc")], tool_choice="required")
    assert shape(r)[1:] == [
        ("mcp_call", "calc", "add", '{"a": 2, "b": 3}', "5", "completed", None),
        ("message", "2 plus 3 is 5."),
    ]


def test_requests_without_mcp_tools_are_answered_too(client: openai.OpenAI) -> None:
    r = client.responses.create(model="tiny", input="What is 2 plus 3?", max_output_tokens=8, temperature=0)
    assert r.status in ("completed", "incomplete") and not [i for i in r.output if i.type.startswith("mcp")]


def test_startup_logs_each_server_and_the_dead_one(vllm_server: str, vllm_log) -> None:
    log = vllm_log.read_text(errors="replace")
    assert "MCP server 'calc' ready with 4 tools" in log
    assert "MCP server 'ghost' unavailable (will retry)" in log
