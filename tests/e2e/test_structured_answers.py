"""Structured answers with MCP tools, end to end: ``text.format`` (``json_schema``, strict or not,
and ``json_object``) beside ``mcp`` tools. The tool-call turns stay tool calls; the answer is held
to the format by vLLM's structured outputs (one structural tag: a hermes ``<tool_call>`` or the
answer). The tiny model was never trained to write JSON: constrained decoding is what makes its
answer valid, so these tests fail if the constraint is lost."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from agents import Agent, HostedMCPTool, ModelSettings, OpenAIResponsesModel, Runner, ToolCallItem
from pydantic import BaseModel

from tests.e2e.test_agents_sdk import ASK, open_sdk

pytestmark = pytest.mark.e2e

SUM_SCHEMA = {
    "type": "object",
    "properties": {"sum": {"type": "integer"}},
    "required": ["sum"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "name": "sum", "schema": SUM_SCHEMA, "strict": True}
CALC = {"type": "mcp", "server_label": "calc", "require_approval": "never"}


def create(client: openai.OpenAI, input: Any, tools: list[dict[str, Any]], fmt: dict[str, Any], **kw: Any):
    return client.responses.create(
        model="tiny",
        input=input,
        tools=tools,
        text={"format": fmt},
        temperature=0,
        max_output_tokens=200,
        **kw,
    )


def kinds(response: Any) -> list[str]:
    return [item.type for item in response.output]


def add_call_then_answer(response: Any) -> str:
    """The MCP call ran first and an answer followed; the answer's text."""
    assert response.status == "completed", (response.incomplete_details, response.output_text[:300])
    assert kinds(response) == ["mcp_list_tools", "mcp_call", "message"]
    call = response.output[1]
    assert (call.name, json.loads(call.arguments), call.output) == ("add", {"a": 2, "b": 3}, "5")
    return response.output_text


@pytest.mark.parametrize("strict", [True, False])
def test_json_schema_answer_after_an_mcp_call(client: openai.OpenAI, strict: bool) -> None:
    r = create(client, ASK, [CALC], {**JSON_SCHEMA, "strict": strict})
    jsonschema.validate(json.loads(add_call_then_answer(r)), SUM_SCHEMA)
    assert r.text.format.type == "json_schema" and r.text.format.strict is strict


def test_json_schema_answer_after_an_mcp_call_streamed(client: openai.OpenAI) -> None:
    # (json_object is held the same way, see tests/unit/test_request_settings.py; the tiny model,
    # free to write any JSON, never closes its object, so it is not run end to end here)
    with client.responses.stream(
        model="tiny",
        input=ASK,
        tools=[CALC],
        text={"format": {**JSON_SCHEMA, "strict": False}},
        temperature=0,
        max_output_tokens=200,
    ) as stream:
        events = list(stream)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # response.completed (or, failing the test, another ending)
    text = add_call_then_answer(final)
    assert deltas == text
    jsonschema.validate(json.loads(text), SUM_SCHEMA)
    assert final.text.format.type == "json_schema"


def test_json_schema_answer_after_an_approved_call_with_previous_response_id(client: openai.OpenAI) -> None:
    gated = {**CALC, "require_approval": "always"}
    first = create(client, ASK, [gated], JSON_SCHEMA)
    assert kinds(first) == ["mcp_list_tools", "mcp_approval_request"]  # the tool turn was not held to JSON
    request = first.output[1]
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    second = create(client, [answer], [gated], JSON_SCHEMA, previous_response_id=first.id)
    assert kinds(second) == ["mcp_call", "message"]
    assert (second.output[0].name, second.output[0].output) == ("add", "5")
    jsonschema.validate(json.loads(second.output_text), SUM_SCHEMA)


class Sum(BaseModel):
    sum: int


@pytest.mark.parametrize("streamed", [False, True])
async def test_agents_sdk_output_type_with_hosted_mcp_tool(vllm_server: str, streamed: bool) -> None:
    async with open_sdk(vllm_server) as sdk:
        agent = Agent(
            name="calculator",
            model=OpenAIResponsesModel(model="tiny", openai_client=sdk.client),
            tools=[
                HostedMCPTool(
                    tool_config={"type": "mcp", "server_label": "calc", "require_approval": "never"}
                )
            ],
            model_settings=ModelSettings(temperature=0, max_tokens=200),
            output_type=Sum,
        )
        if streamed:
            result: Any = Runner.run_streamed(agent, ASK)
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, ASK)
    assert isinstance(result.final_output, Sum)
    calls = [i.raw_item for i in result.new_items if isinstance(i, ToolCallItem)]
    assert [(c.type, c.name, c.output) for c in calls] == [("mcp_call", "add", "5")]
    [body] = sdk.sent
    assert body["text"]["format"]["type"] == "json_schema"  # what the SDK sent for output_type
