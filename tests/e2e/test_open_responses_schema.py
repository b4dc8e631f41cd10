"""Responses and stream events validate against the Open Responses schema: plain requests, tools,
approvals, background, retrieval and errors. (Every body and event of every other end-to-end test
is checked too, at the end of the session: see `wire_log` in conftest.)"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.e2e.wire import Captured, OpenResponses
from tests.support.ci import unavailable

pytestmark = pytest.mark.e2e

MCP = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SUM_SCHEMA = {
    "type": "object",
    "properties": {"sum": {"type": "integer"}},
    "required": ["sum"],
    "additionalProperties": False,
}
CASES: dict[str, dict[str, Any]] = {
    "plain": {"input": "What is 2 plus 3?", "max_output_tokens": 16},
    "instructions": {
        "input": "What is 3 times 3?",
        "instructions": "Answer briefly.",
        "max_output_tokens": 16,
    },
    "multi_turn": {
        "input": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is 2 plus 3?"}],
            },
        ],
        "max_output_tokens": 16,
    },
    "structured_output": {
        "input": "What is 2 plus 3?",
        "text": {"format": {"type": "json_schema", "name": "sum", "schema": SUM_SCHEMA, "strict": True}},
        "max_output_tokens": 64,
    },
    "function_tool_only": {
        "input": "What is the weather in Paris?",
        "tools": [WEATHER],
        "max_output_tokens": 32,
    },
    "two_calls": {"input": "Multiply 6 by 7, then add 8.", "tools": [MCP]},
    "mcp_and_function": {"input": "What is the weather in Paris?", "tools": [MCP, WEATHER]},
    "incomplete": {"input": "Multiply 6 by 7, then add 8.", "tools": [MCP], "max_output_tokens": 3},
    "max_tool_calls": {"input": "Multiply 6 by 7, then add 8.", "tools": [MCP], "max_tool_calls": 1},
    "approval": {"input": "What is 2 plus 3?", "tools": [{"type": "mcp", "server_label": "calc"}]},
}


@pytest.fixture(scope="module")
def spec() -> OpenResponses:
    loaded = OpenResponses.load()
    if loaded is None:
        unavailable("../shared/specs/openresponses-openapi.json is not here (CI has it)")
    return loaded


def last_checked(spec: OpenResponses, wire_log: list[Captured], count: int = 1) -> list[Captured]:
    records = wire_log[-count:]
    errors = [e for record in records for e in spec.check(record)]
    assert not errors, "\n".join(errors)
    assert all(record.bodies for record in records)
    return records


@pytest.mark.parametrize("case", CASES)
def test_response_body_validates(client: openai.OpenAI, spec, wire_log, case: str) -> None:
    r = client.responses.create(model="tiny", temperature=0, **CASES[case])
    assert r.status in ("completed", "incomplete")
    (record,) = last_checked(spec, wire_log)
    assert record.bodies[0]["object"] == "response"


@pytest.mark.parametrize("case", CASES)
def test_every_stream_event_validates(client: openai.OpenAI, spec, wire_log, case: str) -> None:
    with client.responses.stream(model="tiny", temperature=0, **CASES[case]) as stream:
        events = list(stream)
    final = events[-1].response  # get_final_response() insists on response.completed
    (record,) = last_checked(spec, wire_log)
    kinds = [e["type"] for e in record.bodies]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert len(events) == len(record.bodies)
    # the SDK parsed everything into its own types, without loss
    assert drop_none(final.model_dump(mode="json")["output"]) == drop_none(
        record.bodies[-1]["response"]["output"]
    )


def test_retrieved_and_background_responses_validate(client: openai.OpenAI, spec, wire_log) -> None:
    r = client.responses.create(model="tiny", input="What is 2 plus 3?", tools=[MCP], background=True)
    client.responses.retrieve(r.id)
    last_checked(spec, wire_log, 2)


def test_a_compact_answer_validates_as_a_compact_resource(client: openai.OpenAI, spec, wire_log) -> None:
    compacted = client.responses.compact(model="tiny", input="What is 2 plus 3?")
    (record,) = last_checked(spec, wire_log)
    assert record.bodies[0]["object"] == "response.compaction" == compacted.object
    assert [i["type"] for i in record.bodies[0]["output"]] == ["message", "compaction"]


def test_error_bodies_validate_and_are_typed_sdk_errors(client: openai.OpenAI, spec, wire_log) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="tiny", input="hi", tools=[{**MCP, "server_label": "nope"}])
    assert (info.value.param, info.value.code) == ("tools[0].server_label", "unknown_server_label")
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_nope")
    assert missing.value.param == "response_id"
    last_checked(spec, wire_log, 2)


def test_text_format_json_schema_constrains_the_answer(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="tiny", temperature=0, **{**CASES["structured_output"], "max_output_tokens": 200}
    )
    assert r.text.format.type == "json_schema"
    assert r.status == "completed", (r.incomplete_details, r.output_text[:300])
    assert isinstance(json.loads(r.output_text)["sum"], int)


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value
