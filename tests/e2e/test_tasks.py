"""Tool calls run as MCP tasks, end to end: real vLLM with the plugin and the tiny model, and the
tasks calculator (tests/e2e/servers/tasks_calculator.py: the calculator's tools served as tasks,
`add` taking a second) over stdio, configured in the session's tool-server file. The server writes
each task method it sees to ``tasks_marker``: what the server saw is read from there."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support import mcp_requests
from tests.support.mcp_requests import mcp_call

pytestmark = pytest.mark.e2e

TASKS = {"type": "mcp", "server_label": "tasks", "require_approval": "never"}
TASKS26 = {**TASKS, "server_label": "tasks26"}  # the 2026-07-28 extension's server, over HTTP
ADD = "What is 2 plus 3?"  # the model calls add(2, 3)
MULTIPLY = "Use the multiply tool on 4 and 5."


request = partial(mcp_requests.request, tools=[TASKS])


def seen(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def last_task(marker: Path, tool: str) -> str:
    created = [
        m.group(1) for line in seen(marker) if (m := re.fullmatch(rf"tools/call {tool} as (\S+)", line))
    ]
    assert created, seen(marker)
    return created[-1]


@pytest.fixture
def marker(tasks_marker: Path) -> Iterator[Path]:
    tasks_marker.unlink(missing_ok=True)
    yield tasks_marker
    tasks_marker.with_suffix(".hold").unlink(missing_ok=True)


@pytest.fixture
def marker26(tasks26_marker: Path) -> Iterator[Path]:
    tasks26_marker.unlink(missing_ok=True)
    yield tasks26_marker
    tasks26_marker.with_suffix(".hold").unlink(missing_ok=True)


def test_a_call_run_as_a_task_completes_through_polling_with_its_progress(
    vllm_server: str, marker: Path
) -> None:
    body = request(ADD, stream=True, include=["mcp_call.progress"])
    events = []
    with httpx.stream("POST", f"{vllm_server}/v1/responses", json=body, timeout=120) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    progress = [
        (e["progress"], e["total"], e["message"]) for e in events if e["type"] == "response.mcp_call.progress"
    ]
    done = next(
        e["item"]
        for e in events
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "mcp_call"
    )
    assert (done["name"], done["arguments"], done["output"], done["status"]) == (
        "add",
        '{"a": 2, "b": 3}',
        "5",
        "completed",
    )
    assert progress == [(1, 2, "step 1"), (2, 2, "step 2")]
    task = last_task(marker, "add")
    lines = seen(marker)
    # the server saw the task polled while it worked, then its result fetched once it was done
    assert f"tasks/get {task} working" in lines
    assert lines[-1] == f"tasks/result {task} completed"
    assert not any(line.startswith("tasks/cancel") for line in lines)


def test_input_required_is_answered_by_the_servers_elicitation_policy(
    client: openai.OpenAI, marker: Path
) -> None:
    forced = {"type": "mcp", "server_label": "tasks", "name": "multiply"}
    r = client.responses.create(**request(MULTIPLY, tool_choice=forced))
    call = mcp_call(r)
    assert (call.name, call.status) == ("multiply", "completed")
    assert call.output == '20 (elicitation accept {"quantity":2,"gift_wrap":false,"size":"medium"})'
    assert f"tasks/get {last_task(marker, 'multiply')} input_required" in seen(marker)


def test_cancelling_a_background_response_cancels_its_task(client: openai.OpenAI, marker: Path) -> None:
    marker.with_suffix(".hold").touch()  # `add` runs until cancelled
    r = client.responses.create(**request(ADD, background=True))
    # the call runs as a task after the create request returned, polled as it goes
    wait_for(lambda: any(line.startswith("tasks/get") for line in seen(marker)), 60, "the task to be polled")
    task = last_task(marker, "add")
    assert client.responses.retrieve(r.id).status == "in_progress"
    assert client.responses.cancel(r.id).status == "cancelled"
    # well before the 20 s call timeout would cancel it anyway
    wait_for(lambda: f"tasks/cancel {task} working" in seen(marker), 8, "the server to see tasks/cancel")
    assert client.responses.retrieve(r.id).status == "cancelled"


def test_a_call_the_2026_server_makes_a_task_completes_through_tasks_get(
    client: openai.OpenAI, marker26: Path
) -> None:
    """The 2026-07-28 tasks extension over streamable HTTP (``protocol: "auto"``): the server
    answers the call with a task, the loop polls tasks/get (each with the task's ``Mcp-Name``)
    until the result comes inline."""
    r = client.responses.create(**request(ADD, tools=[TASKS26]))
    call = mcp_call(r)
    assert (call.server_label, call.name, call.arguments, call.output, call.error) == (
        "tasks26",
        "add",
        '{"a": 2, "b": 3}',
        "5",
        None,
    )
    task = last_task(marker26, "add")
    lines = seen(marker26)
    polls = [line for line in lines if line.startswith(f"tasks/get {task} ")]
    assert f"tasks/get {task} working" in polls
    assert polls[-1] == f"tasks/get {task} completed"
    assert f"mcp-name {task}" in lines
    assert not any(line.startswith(("tasks/cancel", "tasks/update")) for line in lines)


def test_a_2026_tasks_input_request_is_answered_by_the_elicitation_policy_through_tasks_update(
    client: openai.OpenAI, marker26: Path
) -> None:
    """``multiply`` goes ``input_required`` with an order form in ``inputRequests``; the
    server's ``accept_defaults`` policy answers it once, by ``tasks/update``."""
    forced = {"type": "mcp", "server_label": "tasks26", "name": "multiply"}
    call = mcp_call(client.responses.create(**request(MULTIPLY, tools=[TASKS26], tool_choice=forced)))
    assert (call.name, call.arguments, call.status, call.error) == (
        "multiply",
        '{"a": 4, "b": 5}',
        "completed",
        None,
    )
    assert call.output == '20 (elicitation accept {"quantity":2,"gift_wrap":false})'
    task = last_task(marker26, "multiply")
    lines = seen(marker26)
    assert f"tasks/get {task} input_required" in lines
    assert lines.count(f"tasks/update {task} order-1 accept") == 1
    assert lines[-1] == f"tasks/get {task} completed"


def test_a_2026_tasks_question_pauses_the_response_and_the_users_answer_completes_the_task(
    client: openai.OpenAI, marker26: Path
) -> None:
    """The same server with ``elicitation: ask`` (``tasks26ask``), the client opted in: the
    task's question pauses the response; the answer goes to the server by ``tasks/update``."""
    tool = {**TASKS, "server_label": "tasks26ask"}
    forced = {"type": "mcp", "server_label": "tasks26ask", "name": "multiply"}
    first = client.responses.create(
        **request(MULTIPLY, tools=[tool], tool_choice=forced, include=["mcp_elicitation"])
    )
    paused, question = first.output[-2:]
    assert (first.status, paused.type, paused.status) == ("completed", "mcp_call", "incomplete")
    assert (question.type, question.call_id, question.mode) == ("mcp_elicitation_request", paused.id, "form")
    assert question.message == "How many, and gift wrapped?"
    task = last_task(marker26, "multiply")
    assert not any(line.startswith("tasks/update") for line in seen(marker26))
    reply = {"type": "mcp_elicitation_response", "elicitation_request_id": question.id, "action": "accept"}
    second = client.responses.create(
        **request(
            "",
            input=[{**reply, "content": {"quantity": 7, "gift_wrap": True}}],
            tools=[tool],
            previous_response_id=first.id,
            include=["mcp_elicitation"],
        )
    )
    call = mcp_call(second)
    assert (call.name, call.status, call.error) == ("multiply", "completed", None)
    assert call.output == '20 (elicitation accept {"quantity":7,"gift_wrap":true})'
    lines = seen(marker26)
    assert lines.count(f"tasks/update {task} order-1 accept") == 1
    assert lines[-1] == f"tasks/get {task} completed"


def test_cancelling_a_background_response_cancels_its_2026_task(
    client: openai.OpenAI, marker26: Path
) -> None:
    marker26.with_suffix(".hold").touch()  # the task works on until cancelled
    r = client.responses.create(**request(ADD, tools=[TASKS26], background=True))
    wait_for(
        lambda: any(line.startswith("tasks/get") for line in seen(marker26)), 60, "the task to be polled"
    )
    task = last_task(marker26, "add")
    assert client.responses.retrieve(r.id).status == "in_progress"
    assert client.responses.cancel(r.id).status == "cancelled"
    # well before the 20 s call timeout would cancel it anyway
    wait_for(lambda: f"tasks/cancel {task} working" in seen(marker26), 8, "the server to see tasks/cancel")
    assert client.responses.retrieve(r.id).status == "cancelled"
    assert not any(line.startswith(f"tasks/get {task} completed") for line in seen(marker26))
