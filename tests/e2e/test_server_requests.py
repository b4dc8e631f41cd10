"""What a configured server asks of the loop while a call runs, end to end: real vLLM with the
plugin and the tiny model, and the asking calculator (tests/e2e/servers/asking_calculator.py:
the calculator's tools, so the tiny model calls them as trained) over stdio, configured with
``elicitation: accept_defaults`` and ``sampling`` in the session's tool-server file."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import mcp_requests
from tests.support.mcp_requests import mcp_call

pytestmark = pytest.mark.e2e

ASKING = {"type": "mcp", "server_label": "asking", "require_approval": "never"}
ADD = "What is 2 plus 3?"  # the model calls add(2, 3): progress and logs
MULTIPLY = "Use the multiply tool on 4 and 5."  # multiply(4, 5): elicitation
DIVIDE = "Divide 1 by 0."  # divide(1, 0): sampling


request = partial(mcp_requests.request, tools=[ASKING])


def test_accept_defaults_answers_the_servers_form_with_its_defaults(client: openai.OpenAI) -> None:
    forced = {"type": "mcp", "server_label": "asking", "name": "multiply"}
    call = mcp_call(client.responses.create(**request(MULTIPLY, tool_choice=forced)))
    assert (call.name, call.arguments, call.status) == ("multiply", '{"a": 4, "b": 5}', "completed")
    assert call.output == '20 (elicitation accept {"quantity":2,"gift_wrap":false,"size":"medium"})'


def test_ask_pauses_the_response_on_the_servers_question_and_the_answer_continues_it(
    client: openai.OpenAI,
) -> None:
    """The ``askme`` entry: the same server with ``elicitation: ask``; the client opted in."""
    forced = {"type": "mcp", "server_label": "askme", "name": "multiply"}
    askme = {**ASKING, "server_label": "askme"}
    first = client.responses.create(
        **request(MULTIPLY, tools=[askme], tool_choice=forced, include=["mcp_elicitation"])
    )
    paused, question = first.output[-2:]
    assert (first.status, paused.type, paused.status) == ("completed", "mcp_call", "incomplete")
    assert (question.type, question.call_id, question.mode) == ("mcp_elicitation_request", paused.id, "form")
    assert question.message == "How many, and gift wrapped?"
    answer = {"quantity": 7, "gift_wrap": True, "size": "large"}
    reply = {"type": "mcp_elicitation_response", "elicitation_request_id": question.id, "action": "accept"}
    second = client.responses.create(
        **request(
            "",
            input=[{**reply, "content": answer}],
            tools=[askme],
            previous_response_id=first.id,
            include=["mcp_elicitation"],
        )
    )
    call = mcp_call(second)
    assert (call.name, call.status) == ("multiply", "completed")
    assert call.output == '20 (elicitation accept {"quantity":7,"gift_wrap":true,"size":"large"})'


def test_sampling_runs_on_the_served_model_and_counts_in_usage(
    client: openai.OpenAI, vllm_server: str
) -> None:
    r = client.responses.create(**request(DIVIDE))
    call = mcp_call(r)
    assert (call.name, call.arguments) == ("divide", '{"a": 1, "b": 0}')
    assert call.output.startswith("sampled by tiny ("), call.output
    trace = httpx.get(f"{vllm_server}/v1/mcp/traces/{r.id}", timeout=10).json()
    sampled = [c for c in trace["calls"] if c["tool"] == "sampling/createMessage"]
    assert [c["server"] for c in sampled] == ["asking"]
    # usage counts the model turns (the trace's) and the sampling turn's tokens too
    assert r.usage.output_tokens > trace["summary"]["output_tokens"]


def test_progress_streams_to_a_client_that_opted_in_and_logs_reach_the_server_log(
    vllm_server: str, vllm_log: Path
) -> None:
    body = request(ADD, stream=True, include=["mcp_call.progress"])
    events = []
    with httpx.stream("POST", f"{vllm_server}/v1/responses", json=body, timeout=120) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    types = [e["type"] for e in events]
    start = types.index("response.mcp_call_arguments.done") + 1
    assert types[start : start + 4] == [*["response.mcp_call.progress"] * 3, "response.mcp_call.completed"]
    item_id = events[start + 3]["item_id"]
    got = [(e["item_id"], e["progress"], e["total"], e["message"]) for e in events[start : start + 3]]
    assert got == [(item_id, n, 3, f"step {n}") for n in (1, 2, 3)]
    log = vllm_log.read_text(errors="replace")
    assert all(f"MCP server asking/counter: counted {n}" in log for n in (1, 2, 3))


def test_a_stock_client_streams_no_progress_events(client: openai.OpenAI) -> None:
    with client.responses.stream(**request(ADD)) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.mcp_call.progress" not in types
    call = mcp_call(final)
    assert (call.name, call.output) == ("add", "5")
