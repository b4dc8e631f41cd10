"""Approvals, resuming a conversation, tool-list caching and early tool execution, with a scripted
engine and the calculator MCP server in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from mcp.client.client import Client
from openai.types.responses.tool import McpRequireApprovalMcpToolApprovalFilter

from tests.unit.test_loop_events import ADD_CALL, InMemoryConnection, load_calculator
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.loop.approvals import ApprovalAnswer, denial_text
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.loop.runner import AgentLoop
from vllm_mcp_ext.types.parts import Part, ReasoningDelta, TextDelta, ToolCallDelta, TurnEnd, TurnUsage
from vllm_mcp_ext.types.request import ApprovalPolicy, McpServerUse, ResponsesRequest

ALWAYS = ApprovalPolicy("always")
MULTIPLY_CALL = [ToolCallDelta(1, "multiply", '{"a": 6, "b": 7}')]


@dataclass
class WaitFor:
    """A scripted step that holds the turn until ``event`` is set (fails after a timeout)."""

    event: asyncio.Event


class RecordingConnection(InMemoryConnection):
    def __init__(self, client: Client):
        super().__init__(client)
        self.started = asyncio.Event()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.list_count = 0

    async def current_tools(self):
        self.list_count += 1
        return await super().current_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any], **_: Any):
        self.calls.append((name, arguments))
        self.started.set()
        return await super().call_tool(name, arguments)


class Scripted:
    model_name = "scripted"

    def __init__(self, turns: list[list[Any]]):
        self.turns = list(turns)
        self.seen: list[list[dict[str, Any]]] = []
        self.choices: list[Any] = []

    async def run_turn(self, turn) -> AsyncIterator[Part]:
        self.seen.append([dict(m) for m in turn.messages])
        self.choices.append(turn.tool_choice)
        for step in self.turns.pop(0):
            if isinstance(step, WaitFor):
                await asyncio.wait_for(step.event.wait(), 5)
            else:
                yield step
        yield TurnEnd("stop", TurnUsage(prompt_tokens=10, output_tokens=5))


class Harness:
    def __init__(self, conn: RecordingConnection):
        self.conn = conn

    async def respond(
        self,
        turns: list[list[Any]],
        conversation: ParsableContext,
        approval: ApprovalPolicy = ALWAYS,
        **kw: Any,
    ) -> tuple[list[Any], Scripted]:
        scripted = Scripted(turns)
        loop = AgentLoop(scripted, Settings(max_turns=4))
        req = ResponsesRequest(
            id="resp_x", model="scripted", servers=[McpServerUse("calc", self.conn, approval=approval)], **kw
        )
        plan = await loop.prepare(req, conversation)
        return [e async for e in loop.events(Run(req, conversation, plan))], scripted


@asynccontextmanager
async def calculator() -> AsyncIterator[Harness]:
    # Opened inside each test: anyio scopes must close in the task that opened them.
    async with Client(load_calculator()) as client:
        yield Harness(RecordingConnection(client))


def user(text: str = "2+3?") -> ParsableContext:
    return ParsableContext(messages=[{"role": "user", "content": text}])


def output_types(events: list[Any]) -> list[str]:
    return [i.type for i in events[-1].response.output]


async def test_a_call_that_needs_approval_ends_the_response_with_a_request() -> None:
    async with calculator() as harness:
        conversation = user()
        events, _ = await harness.respond([ADD_CALL], conversation)
        assert [e.type for e in events][-4:] == [
            "response.output_item.done",  # mcp_list_tools
            "response.output_item.added",
            "response.output_item.done",
            "response.completed",
        ]
        request = events[-1].response.output[-1]
        assert (request.type, request.name, request.arguments) == (
            "mcp_approval_request",
            "add",
            '{"a": 2, "b": 3}',
        )
        assert harness.conn.calls == []
        assert list(conversation.pending()) == [request.id]


async def test_approved_call_runs_exactly_as_asked_and_the_loop_goes_on() -> None:
    async with calculator() as harness:
        conversation = user()
        events, _ = await harness.respond([ADD_CALL], conversation)
        approval_id = events[-1].response.output[-1].id
        conversation.answers.append(ApprovalAnswer(approval_id, True))
        events, scripted = await harness.respond([[TextDelta("5")]], conversation)
        assert output_types(events) == ["mcp_call", "message"]  # the tool list is not fetched again
        call = events[-1].response.output[0]
        assert (call.approval_request_id, call.arguments, call.output) == (
            approval_id,
            '{"a": 2, "b": 3}',
            "5",
        )
        assert harness.conn.calls == [("add", {"a": 2, "b": 3})]
        assert harness.conn.list_count == 1
        assert scripted.seen[0][-1]["role"] == "tool" and scripted.seen[0][-1]["content"] == "5"
        assert conversation.pending() == {}


async def test_denied_approval_skips_the_call_and_tells_the_model_why() -> None:
    async with calculator() as harness:
        conversation = user()
        events, _ = await harness.respond([ADD_CALL], conversation)
        conversation.answers.append(ApprovalAnswer(events[-1].response.output[-1].id, False, "too risky"))
        events, scripted = await harness.respond([[TextDelta("ok")]], conversation)
        assert output_types(events) == ["message"]
        assert harness.conn.calls == []
        assert scripted.seen[0][-1]["content"] == denial_text("too risky")


async def test_partly_answered_approvals_run_and_wait_for_the_rest() -> None:
    async with calculator() as harness:
        conversation = user()
        events, _ = await harness.respond([[*ADD_CALL, *MULTIPLY_CALL]], conversation)
        first, second = (i.id for i in events[-1].response.output if i.type == "mcp_approval_request")
        conversation.answers.append(ApprovalAnswer(second, True))
        events, scripted = await harness.respond([], conversation)
        assert output_types(events) == ["mcp_call"] and scripted.seen == []  # no model turn yet
        assert list(conversation.pending()) == [first]
        conversation.answers.append(ApprovalAnswer(first, True))
        events, scripted = await harness.respond([[TextDelta("done")]], conversation)
        assert output_types(events) == ["mcp_call", "message"]
        # results reach the model in the order the model asked for the calls
        assert [m["content"] for m in scripted.seen[0][-2:]] == ["5", "42"]


async def test_an_answer_twice_or_to_nothing_is_a_400() -> None:
    async with calculator() as harness:
        conversation = user()
        events, _ = await harness.respond([ADD_CALL], conversation)
        approval_id = events[-1].response.output[-1].id
        item = {"type": "mcp_approval_response", "approval_request_id": approval_id, "approve": True}
        conversation.add_item(item, "input[0]")
        with pytest.raises(InvalidRequest) as twice:
            conversation.add_item(item, "input[1]")
        assert twice.value.code == "approval_already_answered"
        with pytest.raises(InvalidRequest) as unknown:
            conversation.add_item({**item, "approval_request_id": "mcpr_other"}, "input[2]")
        assert unknown.value.code == "unknown_approval_request"
        await harness.respond([[TextDelta("5")]], conversation)
        with pytest.raises(InvalidRequest) as later:
            conversation.add_item(item, "input[0]")
        assert later.value.code == "approval_already_answered"


async def test_stateless_replay_of_the_output_items_resumes_the_same_way() -> None:
    async with calculator() as harness:
        conversation = user()
        events, _ = await harness.respond([ADD_CALL], conversation)
        output = [i.model_dump(mode="json") for i in events[-1].response.output]
        replayed = ParsableContext()
        for i, item in enumerate([{"role": "user", "content": "2+3?"}, *output]):
            replayed.add_item(item, f"input[{i}]")
        replayed.add_item(
            {"type": "mcp_approval_response", "approval_request_id": output[-1]["id"], "approve": True},
            "input[3]",
        )
        events, scripted = await harness.respond([[TextDelta("5")]], replayed, tool_choice="required")
        assert output_types(events) == ["mcp_call", "message"]
        assert harness.conn.list_count == 1  # the replayed mcp_list_tools stands
        assert scripted.choices == ["auto"]  # resuming does not force a second call
        assert [m["role"] for m in scripted.seen[0]] == ["user", "assistant", "tool"]


async def test_a_changed_allowed_tools_lists_the_tools_again() -> None:
    async with calculator() as harness:
        conversation = user()
        await harness.respond([[TextDelta("hi")]], conversation, approval=ApprovalPolicy("never"))
        conversation.add_item({"role": "user", "content": "again"}, "input[0]")
        events, _ = await harness.respond([[TextDelta("hi")]], conversation, approval=ApprovalPolicy("never"))
        assert output_types(events) == ["message"] and harness.conn.list_count == 1
        scripted = Scripted([[TextDelta("hi")]])
        req = ResponsesRequest(
            id="resp_y", model="scripted", servers=[McpServerUse("calc", harness.conn, allowed=["add"])]
        )
        loop = AgentLoop(scripted, Settings())
        events = [e async for e in loop.events(Run(req, conversation, await loop.prepare(req, conversation)))]
        assert output_types(events) == ["mcp_list_tools", "message"] and harness.conn.list_count == 2


async def test_a_call_starts_as_soon_as_its_arguments_are_complete() -> None:
    async with calculator() as harness:
        # The turn cannot go on until the add call has started: only early execution lets it finish.
        turns = [[*ADD_CALL, WaitFor(harness.conn.started), *MULTIPLY_CALL], [TextDelta("ok")]]
        events, _ = await harness.respond(turns, user(), approval=ApprovalPolicy("never"))
        assert output_types(events) == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]


async def test_conversation_survives_json() -> None:
    async with calculator() as harness:
        conversation = user()
        await harness.respond([[*ADD_CALL, *MULTIPLY_CALL]], conversation)
        restored = ParsableContext.from_json(conversation.to_json())
        assert restored.to_json() == conversation.to_json()
        assert restored.pending() == conversation.pending()


def test_require_approval_forms() -> None:
    from mcp import types

    def tool(name: str, read_only: bool) -> types.Tool:
        return types.Tool(
            name=name,
            input_schema={"type": "object"},
            annotations=types.ToolAnnotations(read_only_hint=read_only),
        )

    read, write = tool("add", True), tool("crash", False)
    assert ApprovalPolicy(None).needs_approval(read)  # absent: OpenAI's default
    assert not ApprovalPolicy("never").needs_approval(write)
    never_read = ApprovalPolicy(
        McpRequireApprovalMcpToolApprovalFilter.model_validate({"never": {"read_only": True}})
    )
    assert not never_read.needs_approval(read) and never_read.needs_approval(write)
    both = ApprovalPolicy(
        McpRequireApprovalMcpToolApprovalFilter.model_validate(
            {"always": {"tool_names": ["add"]}, "never": {"read_only": True}}
        )
    )
    assert both.needs_approval(read)  # always wins


def test_a_call_that_needs_approval_is_refused_where_the_door_cannot_ask() -> None:
    from mcp import types

    tool = types.Tool(name="crash", input_schema={"type": "object"})
    assert ApprovalPolicy("always").decide(tool) == "ask"
    assert ApprovalPolicy("always", can_ask=False).decide(tool) == "refuse"
    assert ApprovalPolicy("never", can_ask=False).decide(tool) == "run"


async def test_replayed_output_items_rebuild_the_conversation_the_server_kept() -> None:
    """What a stateless client sends back (the Agents SDK's default resume, its sessions) is the
    conversation ``previous_response_id`` loads, down to the whitespace a reasoning model writes
    after ``</think>``, which the message item leaves out."""
    async with calculator() as harness:
        kept = user()
        turns = [
            [ReasoningDelta("add them"), TextDelta("\n\n"), *ADD_CALL],
            [ReasoningDelta("it said 5"), TextDelta("\n\n"), TextDelta("5.")],
        ]
        events, _ = await harness.respond(turns, kept, approval=ApprovalPolicy("never"))
        output = [item.model_dump(mode="json") for item in events[-1].response.output]
        replayed = ParsableContext()
        for i, item in enumerate([{"role": "user", "content": "2+3?"}, *output]):
            replayed.add_item(item, f"input[{i}]")
        replayed.close_input()
        assert replayed.messages == kept.messages
