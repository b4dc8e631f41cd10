"""Elicitation ``ask`` (`loop.elicitation`): a server's question pauses the response like an
approval, and the client's answer continues it, by ``previous_response_id`` or by replaying the
items. Through the plugin's real app with a scripted engine and the asking server
(tests/e2e/servers/asking.py) over stdio, in both protocol generations."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import types

from tests.e2e.servers import asking
from tests.support.asgi import loopback, plugin_client
from tests.unit.test_server_requests import AskingModel, events_of
from vllm_mcp_ext.config import HttpServerSpec, StdioServerSpec
from vllm_mcp_ext.config.client_features import ClientFeatures
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.loop.context import ParsableContext, WaitingCall
from vllm_mcp_ext.loop.elicitation import EXPIRED, CallGate, HeldCall, HeldCalls, PendingElicitation
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.types.client_handlers import ClientHandlers
from vllm_mcp_ext.types.source import CallFailed, CallOutcome

pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
ASKING = Path(asking.__file__)
ASK = ClientFeatures(elicitation="ask")
ORDER = {"quantity": 3, "gift_wrap": True, "size": "large"}


def spec(features: ClientFeatures = ASK) -> StdioServerSpec:
    return StdioServerSpec(label="asking", command=sys.executable, args=(str(ASKING),), features=features)


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "scripted",
        "input": "go",
        "tools": [{"type": "mcp", "server_label": "asking", "require_approval": "never"}],
        "include": ["mcp_elicitation"],
        **extra,
    }


def reply(request_id: str, action: str = "accept", content: Any = None) -> dict[str, Any]:
    item = {"type": "mcp_elicitation_response", "elicitation_request_id": request_id, "action": action}
    return item if content is None else {**item, "content": content}


async def create(http: httpx.AsyncClient, request: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post("/v1/responses", json=request, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def items(response: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [item for item in response["output"] if item["type"] == kind]


def accepted(order: dict[str, Any]) -> str:
    return f"elicitation accept {json.dumps(order, separators=(',', ':'))}"


async def test_the_servers_question_pauses_the_response_with_an_item_that_carries_it(tmp_path: Path) -> None:
    async with plugin_client(AskingModel("confirm_order"), (spec(),), tmp_path / "s.db") as http:
        events = await events_of(http, body())
    types = [e["type"] for e in events]
    final = events[-1]["response"]
    assert types[-4:] == [
        "response.output_item.done",  # the mcp_call, paused
        "response.output_item.added",
        "response.output_item.done",  # the question
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    [call] = items(final, "mcp_call")
    [question] = items(final, "mcp_elicitation_request")
    assert (call["status"], call["output"], call["error"]) == ("incomplete", None, None)
    assert question == {
        "type": "mcp_elicitation_request",
        "id": question["id"],
        "server_label": "asking",
        "call_id": call["id"],
        "name": "confirm_order",
        "arguments": "{}",
        "mode": "form",
        "message": "How many, and gift wrapped?",
        "requested_schema": question["requested_schema"],
        "url": None,
        "elicitation_id": None,
        "input_key": None,  # a 2025-11-25 request: the call is held in this process
        "request_state": None,
    }
    assert question["id"].startswith("mcpe_")
    assert set(question["requested_schema"]["properties"]) == {"quantity", "gift_wrap", "size"}
    assert events[-3]["item"] == question and final["status"] == "completed"


async def test_the_answer_by_previous_response_id_reaches_the_waiting_call(tmp_path: Path) -> None:
    async with plugin_client(AskingModel("confirm_order"), (spec(),), tmp_path / "s.db") as http:
        first = await create(http, body())
        [question] = items(first, "mcp_elicitation_request")
        second = await create(
            http, body(previous_response_id=first["id"], input=[reply(question["id"], content=ORDER)])
        )
    assert [i["type"] for i in second["output"]] == ["mcp_call", "message"]
    [call] = items(second, "mcp_call")
    assert (call["name"], call["status"], call["output"]) == ("confirm_order", "completed", accepted(ORDER))
    assert call["elicitation_request_id"] == question["id"]
    assert second["output"][1]["content"][0]["text"] == "done"


async def test_the_answer_by_replay_reaches_the_waiting_call_without_a_store() -> None:
    async with plugin_client(AskingModel("confirm_order"), (spec(),)) as http:
        first = await create(http, body(store=False))
        [question] = items(first, "mcp_elicitation_request")
        replayed = [{"role": "user", "content": "go"}, *first["output"], reply(question["id"], "decline")]
        second = await create(http, body(store=False, input=replayed))
        # and the whole exchange replayed once more, then a new question from the user
        again = [*replayed, *second["output"], {"role": "user", "content": "thanks"}]
        third = await create(http, body(store=False, input=again))
    [call] = items(second, "mcp_call")
    assert (call["status"], call["output"]) == ("completed", "elicitation decline")
    assert [i["type"] for i in third["output"]] == ["message"]


async def test_an_answer_that_does_not_fit_the_schema_is_a_400(tmp_path: Path) -> None:
    async with plugin_client(AskingModel("confirm_order"), (spec(),), tmp_path / "s.db") as http:
        first = await create(http, body())
        [question] = items(first, "mcp_elicitation_request")
        bad = reply(question["id"], content={"quantity": "many"})
        answer = await http.post("/v1/responses", json=body(previous_response_id=first["id"], input=[bad]))
        unknown = await http.post(
            "/v1/responses", json=body(previous_response_id=first["id"], input=[reply("mcpe_nope", "cancel")])
        )
        # the call still waits: a good answer after the bad one is taken
        second = await create(
            http, body(previous_response_id=first["id"], input=[reply(question["id"], "cancel")])
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_elicitation_content",
        "input[0].content['quantity']",
    )
    assert "'many' is not of type 'integer'" in error["message"]
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_elicitation_request"
    assert items(second, "mcp_call")[0]["output"] == "elicitation cancel"


async def test_without_the_include_ask_declines_and_a_stock_client_sees_no_new_item() -> None:
    async with plugin_client(AskingModel("confirm_order"), (spec(),)) as http:
        answer = await create(http, {**body(), "include": []})
    assert [i["type"] for i in answer["output"]] == ["mcp_list_tools", "mcp_call", "message"]
    assert items(answer, "mcp_call")[0]["output"] == "elicitation decline"


async def test_a_url_mode_question_carries_the_url_and_takes_no_content(tmp_path: Path) -> None:
    async with plugin_client(AskingModel("sign_in"), (spec(),), tmp_path / "s.db") as http:
        first = await create(http, body())
        [question] = items(first, "mcp_elicitation_request")
        bad = await http.post(
            "/v1/responses",
            json=body(previous_response_id=first["id"], input=[reply(question["id"], content={"a": 1})]),
        )
        second = await create(http, body(previous_response_id=first["id"], input=[reply(question["id"])]))
    assert (question["mode"], question["url"], question["elicitation_id"]) == (
        "url",
        "https://example.test/login",
        "login-1",
    )
    assert question["requested_schema"] is None
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0].content"
    assert items(second, "mcp_call")[0]["output"] == "elicitation accept"


async def test_a_2026_servers_input_required_round_pauses_and_continues_the_same_way(tmp_path: Path) -> None:
    features = ClientFeatures(elicitation="ask", protocol="auto")
    async with plugin_client(AskingModel("order_form"), (spec(features),), tmp_path / "s.db") as http:
        first = await create(http, body())
        [question] = items(first, "mcp_elicitation_request")
        second = await create(
            http, body(previous_response_id=first["id"], input=[reply(question["id"], content=ORDER)])
        )
    assert question["message"] == "How many, and gift wrapped?" and question["input_key"]
    assert items(second, "mcp_call")[0]["output"] == accepted(ORDER)


async def test_a_2026_call_resumes_from_its_rounds_answer_in_another_process(tmp_path: Path) -> None:
    """Stateless multi-round-trip: the call is sent again with the answer and the round's
    request_state, so the API-server process that paused need not be the one that continues (the
    MCP server is one, over HTTP: its request_state is its own to check)."""
    features = ClientFeatures(elicitation="ask", protocol="auto")
    store = tmp_path / "s.db"
    async with loopback(asking.build().streamable_http_app(), lifespan=True) as url:
        shared = HttpServerSpec(f"{url}/mcp", "streamable_http", label="asking", features=features)
        async with plugin_client(AskingModel("order_form"), (shared,), store) as http:
            first = await create(http, body())
            replayed_first = await create(http, body(store=False))
        [question] = items(first, "mcp_elicitation_request")
        [replayed] = items(replayed_first, "mcp_elicitation_request")
        async with plugin_client(AskingModel("order_form"), (shared,), store) as http:  # "another process"
            by_id = await create(
                http, body(previous_response_id=first["id"], input=[reply(question["id"], content=ORDER)])
            )
            history = [{"role": "user", "content": "go"}, *replayed_first["output"]]
            by_replay = await create(
                http, body(store=False, input=[*history, reply(replayed["id"], "decline")])
            )
    assert items(by_id, "mcp_call")[0]["output"] == accepted(ORDER)
    assert items(by_replay, "mcp_call")[0]["output"] == "elicitation decline"


async def test_a_continuation_in_a_process_that_does_not_hold_the_call_fails_the_call_saying_why(
    tmp_path: Path,
) -> None:
    store = tmp_path / "s.db"
    async with plugin_client(AskingModel("confirm_order"), (spec(),), store) as http:
        first = await create(http, body())
    [question] = items(first, "mcp_elicitation_request")
    async with plugin_client(AskingModel("confirm_order"), (spec(),), store) as http:  # "another process"
        second = await create(
            http, body(previous_response_id=first["id"], input=[reply(question["id"], content=ORDER)])
        )
    [call] = items(second, "mcp_call")
    assert call["status"] == "failed" and call["error"]["message"] == EXPIRED
    assert [i["type"] for i in second["output"]] == ["mcp_call", "message"]  # the model is told


async def test_a_held_call_is_cancelled_once_its_wait_is_over() -> None:
    held = HeldCalls(wait=0.01, limit=1)
    gate = CallGate()
    task: asyncio.Task[CallOutcome] = asyncio.create_task(asyncio.Event().wait())  # type: ignore[arg-type]
    pending = PendingElicitation("mcpe_1", "mcp_1", "asking", "confirm_order", "{}", "form")
    assert held.hold(HeldCall(pending, task, gate, None))
    assert not held.hold(HeldCall(pending, task, gate, None))  # past the limit
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled() and held.take("mcpe_1", None) is None and len(held) == 0


async def test_only_the_caller_that_paused_may_take_the_held_call() -> None:
    held = HeldCalls(wait=60, limit=4)
    task: asyncio.Task[CallOutcome] = asyncio.create_task(asyncio.Event().wait())  # type: ignore[arg-type]
    pending = PendingElicitation("mcpe_1", "mcp_1", "asking", "confirm_order", "{}", "form")
    held.hold(HeldCall(pending, task, CallGate(), "key-a"))
    assert held.take("mcpe_1", "key-b") is None
    taken = held.take("mcpe_1", "key-a")
    assert taken is not None and taken.task is task
    task.cancel()


async def test_a_server_url_server_gets_the_configured_defaults_no_elicitation_and_no_sampling() -> None:
    """A request's own ``server_url`` server has no policy fields: elicitation declined (not
    declared: the server's ask is refused) and sampling off, whatever the caller lends."""
    asked: list[Any] = []

    async def elicit(params: Any) -> Any:
        asked.append(params)
        return types.ElicitResult(action="accept", content=ORDER)

    async def sample(*args: Any) -> Any:
        asked.append(args)
        raise AssertionError("sampling is off for server_url servers")

    handlers = ClientHandlers(elicit=elicit, sample=sample)
    async with loopback(asking.build().streamable_http_app(), lifespan=True) as url:
        port = url.rsplit(":", 1)[1]
        service = RemoteMcp(RemoteSettings(allow=(f"127.0.0.1:{port}",), call_timeout=10))
        try:
            src = service.source("r", f"{url}/mcp", {}, None, None, "tools[0]")
            await src.current_tools()
            with pytest.raises(CallFailed) as form:
                await src.call_tool("confirm_order", {}, handlers=handlers)
            greeting = await src.call_tool("greet", {}, handlers=handlers)
        finally:
            await service.close()
    assert asked == []
    assert form.value.message == "Elicitation not supported"  # the SDK's refusal, as for "decline"
    assert greeting.content[0].text.startswith("sampling refused: Sampling not supported")  # type: ignore[union-attr]


async def test_chat_completions_cannot_ask_so_the_servers_question_is_declined() -> None:
    chat = {
        "model": "scripted",
        "messages": [{"role": "user", "content": "go"}],
        "tools": [{"type": "mcp", "server_label": "asking", "require_approval": "never"}],
    }
    async with plugin_client(AskingModel("confirm_order"), (spec(),)) as http:
        answer = await http.post("/v1/chat/completions", json=chat, timeout=60)
    assert answer.status_code == 200, answer.text
    [call] = answer.json()["choices"][0]["message"]["mcp_calls"]
    assert call["output"] == "elicitation decline"


async def test_progress_and_questions_together_still_pause(tmp_path: Path) -> None:
    """Progress events wait for the calls; a call waiting for an answer must not hold them."""
    async with plugin_client(AskingModel("confirm_order"), (spec(),), tmp_path / "s.db") as http:
        events = await events_of(http, body(include=["mcp_call.progress", "mcp_elicitation"]))
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]][-2:] == ["mcp_call", "mcp_elicitation_request"]


async def test_an_approved_call_that_asks_pauses_again_by_id_and_by_replay(tmp_path: Path) -> None:
    always = {"type": "mcp", "server_label": "asking", "require_approval": "always"}
    async with plugin_client(AskingModel("confirm_order"), (spec(),), tmp_path / "s.db") as http:
        first = await create(http, body(tools=[always]))
        [approval] = items(first, "mcp_approval_request")
        yes = {"type": "mcp_approval_response", "approval_request_id": approval["id"], "approve": True}
        second = await create(http, body(tools=[always], previous_response_id=first["id"], input=[yes]))
        [paused] = items(second, "mcp_call")
        [question] = items(second, "mcp_elicitation_request")
        by_id = await create(
            http,
            body(tools=[always], previous_response_id=second["id"], input=[reply(question["id"], "decline")]),
        )
        # the same pause again, replayed without the store
        first = await create(http, body(tools=[always], store=False))
        [approval] = items(first, "mcp_approval_request")
        yes = {"type": "mcp_approval_response", "approval_request_id": approval["id"], "approve": True}
        history: list[Any] = [{"role": "user", "content": "go"}, *first["output"], yes]
        second = await create(http, body(tools=[always], store=False, input=history))
        [question] = items(second, "mcp_elicitation_request")
        history += [*second["output"], reply(question["id"], content=ORDER)]
        replayed = await create(http, body(tools=[always], store=False, input=history))
    assert paused["status"] == "incomplete" and paused["approval_request_id"]
    assert question["call_id"] == items(second, "mcp_call")[0]["id"]  # the item that started it
    assert items(by_id, "mcp_call")[0]["output"] == "elicitation decline"
    assert [i["type"] for i in replayed["output"]] == ["mcp_call", "message"]
    assert items(replayed, "mcp_call")[0]["output"] == accepted(ORDER)


async def test_an_answer_after_the_wait_is_over_fails_the_call_saying_why(tmp_path: Path) -> None:
    limits = Limits(elicitation_wait=0.2)
    async with plugin_client(
        AskingModel("confirm_order"), (spec(),), tmp_path / "s.db", limits=limits
    ) as http:
        held = http.app.state.vllm_mcp_ext.service.loop.held  # type: ignore[attr-defined]
        first = await create(http, body())
        [question] = items(first, "mcp_elicitation_request")
        async with asyncio.timeout(10):
            while len(held):  # the wait runs out: the held call is cancelled and forgotten
                await asyncio.sleep(0.02)
        second = await create(
            http, body(previous_response_id=first["id"], input=[reply(question["id"], content=ORDER)])
        )
    [call] = items(second, "mcp_call")
    assert call["status"] == "failed" and call["error"]["message"] == EXPIRED


async def test_the_call_timeout_stops_while_the_user_is_asked(tmp_path: Path) -> None:
    settings = Settings(connect_timeout=20, call_timeout=0.5)
    async with plugin_client(
        AskingModel("confirm_order"), (spec(),), tmp_path / "s.db", settings=settings
    ) as http:
        first = await create(http, body())
        [question] = items(first, "mcp_elicitation_request")
        await asyncio.sleep(1.0)  # twice the call timeout: the user takes their time
        second = await create(
            http, body(previous_response_id=first["id"], input=[reply(question["id"], content=ORDER)])
        )
    assert items(second, "mcp_call")[0]["output"] == accepted(ORDER)


async def test_a_conversation_that_moves_on_without_answering_lets_the_call_go(tmp_path: Path) -> None:
    async with plugin_client(AskingModel("confirm_order"), (spec(),), tmp_path / "s.db") as http:
        held = http.app.state.vllm_mcp_ext.service.loop.held  # type: ignore[attr-defined]
        first = await create(http, body())
        [(_, call)] = held._held.items()
        second = await create(http, body(previous_response_id=first["id"], input="never mind"))
        await asyncio.wait({call.task}, timeout=10)
    assert len(held) == 0 and call.task.cancelled()
    assert [i["type"] for i in second["output"]] == ["message"]


def test_replay_settles_only_mcp_calls_that_did_not_finish_not_client_function_calls() -> None:
    context = ParsableContext()
    context.wait_for([WaitingCall("fc_1"), WaitingCall("fc_2")])  # two client function calls
    context.add_item({"type": "function_call_output", "call_id": "fc_1", "output": "one"}, "input[0]")
    context.close_input()
    assert [w.call_id for w in context.waiting if w.result is None] == ["fc_2"]  # still the client's

    replayed = ParsableContext()
    skipped = {"type": "mcp_call", "id": "mcp_1", "name": "add", "arguments": "{}", "status": "incomplete"}
    replayed.add_item(skipped, "input[0]")
    replayed.close_input()
    assert replayed.waiting == [] and replayed.messages[-1] == {
        "role": "tool",
        "tool_call_id": "mcp_1",
        "content": "This tool call did not finish.",
    }
