"""Responses and stream events, as sent on the wire, validate against the Open Responses schema.

That schema has no MCP items, tools or events: those follow OpenAI's wire format (docs/events.md)
and are left out of the check here; everything else must validate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "openresponses-openapi.json"
MCP_ITEMS = {"mcp_list_tools", "mcp_call", "mcp_approval_request"}
# Event types whose names differ between the two: we follow OpenAI's (docs/events.md).
OPENAI_NAMES = {"response.reasoning_text.delta", "response.reasoning_text.done"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not here (CI has it)")
    return json.loads(SPEC.read_text())


def validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    )


def event_schemas(spec: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, schema in spec["components"]["schemas"].items():
        enum = schema.get("properties", {}).get("type", {}).get("enum")
        if name.endswith("StreamingEvent") and enum:
            out[enum[0]] = name
    return out


def without_mcp(response: dict[str, Any]) -> dict[str, Any]:
    return {
        **response,
        "output": [i for i in response["output"] if i["type"] not in MCP_ITEMS],
        "tools": [t for t in response["tools"] if t["type"] != "mcp"],
    }


def check(spec: dict[str, Any], name: str, value: Any) -> None:
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator(spec, name).iter_errors(value)]
    assert not errors, f"{name} does not validate:\n" + "\n".join(errors)


MCP = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CASES = {
    "two_calls": ("Multiply 6 by 7, then add 8.", [MCP]),
    "function_tool": ("What is the weather in Paris?", [MCP, WEATHER]),
    "incomplete": ("Multiply 6 by 7, then add 8.", [MCP], {"max_tool_calls": 1}),
}


@pytest.mark.parametrize("case", CASES)
def test_response_body_validates(vllm_server: str, spec: dict[str, Any], case: str) -> None:
    text, tools, *extra = CASES[case]
    body = {"model": "tiny", "input": text, "tools": tools, "temperature": 0, **(extra[0] if extra else {})}
    response = httpx.post(f"{vllm_server}/v1/responses", json=body, timeout=120).json()
    check(spec, "ResponseResource", without_mcp(response))


@pytest.mark.parametrize("case", CASES)
def test_every_stream_event_validates(vllm_server: str, spec: dict[str, Any], case: str) -> None:
    text, tools, *extra = CASES[case]
    body = {"model": "tiny", "input": text, "tools": tools, "temperature": 0, "stream": True}
    body.update(extra[0] if extra else {})
    schemas = event_schemas(spec)
    checked: set[str] = set()
    with httpx.stream("POST", f"{vllm_server}/v1/responses", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            kind = event["type"]
            if kind.startswith("response.mcp") or (event.get("item") or {}).get("type") in MCP_ITEMS:
                continue
            if "response" in event:
                event = {**event, "response": without_mcp(event["response"])}
            assert kind in schemas or kind in OPENAI_NAMES, f"event {kind} is in neither spec"
            if kind in schemas:
                check(spec, schemas[kind], event)
                checked.add(kind)
    assert {"response.created", "response.in_progress"} <= checked
    assert checked & {"response.completed", "response.incomplete"}
