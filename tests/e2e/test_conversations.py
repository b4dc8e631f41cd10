"""Conversations that last, end to end: the response store, previous_response_id, stateless
replay, approvals, background responses, and secrets kept out of everything."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import serve
from tests.e2e.test_mcp_loop import mcp, shape

pytestmark = pytest.mark.e2e

ASK = "What is 2 plus 3?"
ANSWER = "2 plus 3 is 5."


def gated(label: str, **extra: Any) -> dict[str, Any]:
    """An mcp tool with OpenAI's default: every call waits for approval."""
    return {"type": "mcp", "server_label": label, **extra}


def create(client: openai.OpenAI, input: Any, tools: list[dict[str, Any]], **kw: Any):
    return client.responses.create(model="tiny", input=input, tools=tools, temperature=0, **kw)


def approval(request_id: str, approve: bool = True, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve, **extra}


# -- previous_response_id and replay -------------------------------------------------------


def test_previous_response_id_continues_the_stored_conversation(client: openai.OpenAI) -> None:
    first = create(client, ASK, [mcp("calc")])
    second = create(client, ASK, [mcp("calc")], previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # the tools are already in the conversation: not listed again
    assert [i.type for i in second.output if i.type == "mcp_list_tools"] == []
    # the model saw the whole first conversation, which the prefix cache still held
    assert second.usage.input_tokens > first.usage.input_tokens // 2 + 40
    assert second.usage.input_tokens_details.cached_tokens >= 64
    # whatever the model wrote reaches the client, even a tool call the parser could not read
    assert second.output_text


def test_stateless_replay_of_output_items_is_the_same_conversation(client: openai.OpenAI) -> None:
    first = create(client, ASK, [mcp("calc")], store=False)
    replay = [{"role": "user", "content": ASK}, *[i.model_dump(exclude_none=True) for i in first.output]]
    second = create(client, [*replay, {"role": "user", "content": ASK}], [mcp("calc")], store=False)
    assert [i.type for i in second.output if i.type == "mcp_list_tools"] == []
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)  # store=False kept nothing


def test_changed_allowed_tools_lists_the_tools_again(client: openai.OpenAI) -> None:
    first = create(client, ASK, [mcp("calc")])
    second = create(client, ASK, [mcp("calc", allowed_tools=["add"])], previous_response_id=first.id)
    listings = [i for i in second.output if i.type == "mcp_list_tools"]
    assert [[t.name for t in i.tools] for i in listings] == [["add"]]


def test_retrieve_returns_what_create_returned_and_delete_removes_it(client: openai.OpenAI) -> None:
    r = create(client, ASK, [mcp("calc")], metadata={"case": "retrieve"})
    got = client.responses.retrieve(r.id)
    assert got.model_dump() == r.model_dump()
    deleted = client.responses.with_raw_response.delete(r.id)  # the SDK's delete() returns None
    assert (deleted.status_code, deleted.http_response.json()) == (
        200,
        {"id": r.id, "object": "response", "deleted": True},
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError) as info:
        create(client, ASK, [mcp("calc")], previous_response_id=r.id)
    assert info.value.body["param"] == "previous_response_id"
    assert info.value.body["code"] == "previous_response_not_found"


def test_input_items_are_listed_and_paginated(client: openai.OpenAI) -> None:
    turns = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    r = create(client, [*turns, {"role": "user", "content": ASK}], [mcp("calc")])
    page = client.responses.input_items.list(r.id, limit=2, order="asc")
    assert [i.role for i in page.data] == ["user", "assistant"] and page.has_more
    rest = client.responses.input_items.list(r.id, limit=2, order="asc", after=page.data[-1].id)
    assert [i.content[0].text for i in rest.data] == [ASK] and not rest.has_more
    newest_first = client.responses.input_items.list(r.id)
    assert [i.content[0].text for i in newest_first.data] == [ASK, "hi", "hello"]


# -- approvals -----------------------------------------------------------------------------


def test_default_require_approval_asks_then_runs_exactly_the_approved_call(client: openai.OpenAI) -> None:
    first = create(client, ASK, [gated("calc")])
    assert first.status == "completed"
    assert [i.type for i in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert (request.server_label, request.name, request.arguments) == ("calc", "add", '{"a": 2, "b": 3}')

    second = create(client, [approval(request.id)], [gated("calc")], previous_response_id=first.id)
    assert shape(second) == [
        ("mcp_call", "calc", "add", '{"a": 2, "b": 3}', "5", "completed", None),
        ("message", ANSWER),
    ]
    assert second.output[0].approval_request_id == request.id

    with pytest.raises(openai.BadRequestError) as twice:
        create(client, [approval(request.id)], [gated("calc")], previous_response_id=second.id)
    assert twice.value.body["code"] == "approval_already_answered"


def test_denied_call_does_not_run_and_the_model_goes_on(client: openai.OpenAI) -> None:
    first = create(client, ASK, [gated("calc")])
    denied = approval(first.output[1].id, approve=False, reason="not today")
    second = create(client, [denied], [gated("calc")], previous_response_id=first.id)
    assert second.status == "completed"
    assert [i for i in second.output if i.type == "mcp_call"] == []
    assert second.output  # the model had its turn after hearing no


def test_partial_approval_runs_what_was_answered_and_waits_for_the_rest(client: openai.OpenAI) -> None:
    tools = [gated("notes"), gated("facts")]
    first = create(client, "Save a note about Peru and tell me its capital.", tools)
    note, capital = (i for i in first.output if i.type == "mcp_approval_request")
    assert (note.name, capital.name) == ("add_note", "capital")

    second = create(client, [approval(capital.id)], tools, previous_response_id=first.id)
    assert shape(second) == [
        ("mcp_call", "facts", "capital", '{"country": "Peru"}', "Lima", "completed", None)
    ]

    third = create(client, [approval(note.id)], tools, previous_response_id=second.id)
    assert shape(third) == [
        ("mcp_call", "notes", "add_note", '{"text": "Peru"}', "saved: Peru", "completed", None),
        ("message", "Saved. The capital of Peru is Lima."),
    ]


def test_approval_ids_from_elsewhere_are_a_400(client: openai.OpenAI) -> None:
    one = create(client, ASK, [gated("calc")])
    other = create(client, ASK, [gated("calc")])
    for bad in (other.output[1].id, "mcpr_unknown"):
        with pytest.raises(openai.BadRequestError) as info:
            create(client, [approval(bad)], [gated("calc")], previous_response_id=one.id)
        assert info.value.body["code"] == "unknown_approval_request"
        assert info.value.body["param"] == "input[0].approval_request_id"


def test_approval_request_streams_only_item_added_and_done(client: openai.OpenAI) -> None:
    with client.responses.stream(model="tiny", input=ASK, tools=[gated("calc")], temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    index = next(i for i, item in enumerate(final.output) if item.type == "mcp_approval_request")
    assert [e.type for e in events if getattr(e, "output_index", None) == index] == [
        "response.output_item.added",
        "response.output_item.done",
    ]


def test_stateless_approval_replays_the_conversation_and_is_not_forced_again(client: openai.OpenAI) -> None:
    forced = {"type": "mcp", "server_label": "calc", "name": "add"}
    first = create(client, ASK, [gated("calc")], tool_choice=forced, store=False)
    request = first.output[-1]
    replay = [
        {"role": "user", "content": ASK},
        *[i.model_dump(exclude_none=True) for i in first.output],
        approval(request.id),
    ]
    second = create(client, replay, [gated("calc")], tool_choice=forced, store=False)
    assert shape(second) == [
        ("mcp_call", "calc", "add", '{"a": 2, "b": 3}', "5", "completed", None),
        ("message", ANSWER),
    ]


# -- background ----------------------------------------------------------------------------


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_background_response_can_be_polled_to_the_end(client: openai.OpenAI) -> None:
    r = create(client, ASK, [mcp("calc")], background=True)
    assert r.status in ("queued", "in_progress") and r.background
    done = wait_for(
        lambda: (got := client.responses.retrieve(r.id)).status == "completed" and got, what="completion"
    )
    assert shape(done)[1:] == [
        ("mcp_call", "calc", "add", '{"a": 2, "b": 3}', "5", "completed", None),
        ("message", ANSWER),
    ]
    # the stored events replay from any point
    with client.responses.retrieve(r.id, stream=True, starting_after=2) as stream:
        events = list(stream)
    assert events[0].sequence_number == 3 and events[-1].type == "response.completed"


def fresh(marker: Path) -> Path:
    for suffix in (".started", ".cancelled"):
        marker.with_suffix(suffix).unlink(missing_ok=True)
    return marker


def test_cancel_stops_a_background_response_mid_call(client: openai.OpenAI, slow_marker: Path) -> None:
    fresh(slow_marker)
    r = create(client, ASK, [mcp("slowcalc")], background=True)
    wait_for(slow_marker.with_suffix(".started").exists, what="the slow tool to start")
    polled = client.responses.retrieve(r.id)
    assert polled.status == "in_progress"
    assert [i.status for i in polled.output if i.type == "mcp_call"] == ["calling"]
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(r.id).status == "cancelled"
    # well before the 20 s call timeout would cancel it anyway
    wait_for(slow_marker.with_suffix(".cancelled").exists, 8, "the MCP server to see the cancellation")


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_cancels_the_running_call(
    vllm_server: str, slow_marker: Path, stream: bool
) -> None:
    fresh(slow_marker)
    body = {"model": "tiny", "input": ASK, "tools": [mcp("slowcalc")], "temperature": 0, "stream": stream}
    with httpx.Client(timeout=httpx.Timeout(120, read=10)) as http:
        if stream:
            with http.stream("POST", f"{vllm_server}/v1/responses", json=body) as r:
                for line in r.iter_lines():
                    if "response.mcp_call_arguments.done" in line:
                        wait_for(slow_marker.with_suffix(".started").exists, 20, "the slow tool to start")
                        break  # leave while the call runs
        else:
            with pytest.raises(httpx.ReadTimeout):
                http.post(f"{vllm_server}/v1/responses", json=body)
    assert slow_marker.with_suffix(".started").exists()
    # well before the 20 s call timeout would cancel it anyway
    wait_for(slow_marker.with_suffix(".cancelled").exists, 8, "the MCP server to see the cancellation")


def test_cancel_of_a_foreground_response_is_a_400(client: openai.OpenAI) -> None:
    r = create(client, ASK, [mcp("calc")])
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(r.id)


# -- one store, several processes, restarts ------------------------------------------------


def test_another_server_process_continues_the_conversation(
    client: openai.OpenAI, reasoning_client: openai.OpenAI
) -> None:
    first = create(client, ASK, [gated("calc")])
    # The second server shares the SQLite file: it runs the approved call.
    second = create(
        reasoning_client, [approval(first.output[1].id)], [gated("calc")], previous_response_id=first.id
    )
    assert second.output[0].type == "mcp_call" and second.output[0].output == "5"


def test_the_conversation_survives_a_server_restart(
    tiny_model: Path, mcp_config: Path, logs: Path, tmp_path: Path
) -> None:
    store = tmp_path / "restart.sqlite3"
    with serve(tiny_model, mcp_config, logs / "vllm-before.log", store=store) as url:
        before = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        first = create(before, ASK, [gated("calc")])
    with serve(tiny_model, mcp_config, logs / "vllm-after.log", store=store) as url:
        after = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        second = create(after, [approval(first.output[1].id)], [gated("calc")], previous_response_id=first.id)
        assert shape(second)[-1] == ("message", ANSWER)


# -- secrets -------------------------------------------------------------------------------

SECRET = "sk-planted-secret-4f1d"
TOKEN = "tok-planted-token-9c2e"


def test_headers_and_authorization_are_never_kept_or_shown(
    client: openai.OpenAI, vllm_server: str, store_path: Path, logs: Path
) -> None:
    tool = mcp("calc", headers={"X-Api-Key": SECRET}, authorization=TOKEN)
    r = create(client, ASK, [tool])
    bodies = [r.model_dump_json(), client.responses.retrieve(r.id).model_dump_json()]
    bodies.append(httpx.get(f"{vllm_server}/v1/responses/{r.id}/input_items").text)
    with client.responses.stream(model="tiny", input=ASK, tools=[tool], temperature=0) as stream:
        bodies.extend(e.model_dump_json() for e in stream)
    stored = b"".join(p.read_bytes() for p in store_path.parent.glob(store_path.name + "*"))
    log = (logs / "vllm.log").read_text(errors="replace")
    for secret in (SECRET, TOKEN):
        assert not any(secret in body for body in bodies)
        assert secret.encode() not in stored
        assert secret not in log
