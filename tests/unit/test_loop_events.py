"""The loop with a scripted engine and an in-memory MCP server: event order and stop rules."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp.client.client import Client

from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.loop.runner import AgentLoop
from vllm_mcp_ext.types.parts import Part, ReasoningDelta, TextDelta, ToolCallDelta, TurnEnd, TurnUsage
from vllm_mcp_ext.types.request import NEVER, ApprovalPolicy, McpServerUse, ResponsesRequest

CALCULATOR = Path(__file__).resolve().parents[2] / "examples" / "servers" / "calculator.py"


def load_calculator() -> Any:
    spec = importlib.util.spec_from_file_location("calculator", CALCULATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.server


class InMemoryConnection:
    def __init__(self, client: Client):
        self.client = client
        self.label = "calc"

    async def current_tools(self):
        return tuple((await self.client.list_tools()).tools)

    async def call_tool(self, name: str, arguments: dict[str, Any], **_: Any):
        return await self.client.call_tool(name, arguments)


class ScriptedTurns:
    """Plays back parts, one list per turn, and records the conversation of each turn."""

    model_name = "scripted"

    def __init__(self, turns: list[list[Part]]):
        self.turns = list(turns)
        self.seen: list[list[dict[str, Any]]] = []

    async def run_turn(self, turn) -> AsyncIterator[Part]:
        self.seen.append([dict(m) for m in turn.messages])
        for part in self.turns.pop(0):
            yield part
        yield TurnEnd(
            "stop", TurnUsage(prompt_tokens=10, cached_tokens=4, output_tokens=5, reasoning_tokens=2)
        )


def request(
    source: InMemoryConnection,
    approval: ApprovalPolicy = NEVER,
    **kw: Any,
) -> ResponsesRequest:
    return ResponsesRequest(
        id="resp_1", model="scripted", servers=[McpServerUse("calc", source, approval=approval)], **kw
    )


ADD_CALL = [
    ToolCallDelta(0, "add"),
    ToolCallDelta(0, arguments='{"a": 2,'),
    ToolCallDelta(0, arguments=' "b": 3}'),
]


async def run(turns: list[list[Part]], **kw: Any):
    scripted = ScriptedTurns(turns)
    async with Client(load_calculator()) as client:
        loop = AgentLoop(scripted, Settings(max_turns=3))
        req = request(InMemoryConnection(client), **kw)
        context = ParsableContext(messages=[{"role": "user", "content": "2+3?"}])
        plan = await loop.prepare(req, context)
        events = [e async for e in loop.events(Run(req, context, plan))]
    return events, scripted


async def test_a_tool_turn_then_an_answer_streams_the_spec_sequence() -> None:
    turns = [[ReasoningDelta("think"), *ADD_CALL], [TextDelta("It is "), TextDelta("5.")]]
    events, scripted = await run(turns)
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert [i.type for i in final.output] == ["mcp_list_tools", "reasoning", "mcp_call", "message"]
    call = final.output[2]
    assert (call.arguments, call.output, call.status) == ('{"a": 2, "b": 3}', "5", "completed")
    usage = final.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens) == (20, 8, 10)
    assert usage.output_tokens_details.reasoning_tokens == 4
    # the second turn saw the call and its result
    second = scripted.seen[1]
    assert second[1]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 2, "b": 3}'}
    assert second[2] == {"role": "tool", "tool_call_id": second[1]["tool_calls"][0]["id"], "content": "5"}


async def test_whitespace_between_calls_makes_no_message_item() -> None:
    turns = [[TextDelta("\n"), *ADD_CALL, TextDelta("\n")], [TextDelta("5")]]
    events, scripted = await run(turns)
    assert [i.type for i in events[-1].response.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert scripted.seen[1][1]["content"] == ""  # nor any text in the model's history


async def test_a_message_starts_at_its_first_visible_character() -> None:
    events, _ = await run([[ReasoningDelta("hm"), TextDelta("\n"), TextDelta("\n5")]])
    assert events[-1].response.output[-1].content[0].text == "5"


async def test_server_side_turn_cap_ends_incomplete() -> None:
    events, _ = await run([ADD_CALL, ADD_CALL, ADD_CALL])
    final = events[-1]
    assert final.type == "response.incomplete" and final.response.incomplete_details.reason == "max_turns"


async def test_max_output_tokens_counts_every_turn() -> None:
    events, _ = await run([ADD_CALL, ADD_CALL], max_output_tokens=10)
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


async def test_parallel_calls_all_run() -> None:
    both = [*ADD_CALL, ToolCallDelta(1, "multiply", '{"a": 6, "b": 7}')]
    events, _ = await run([both, [TextDelta("ok")]])
    calls = [i for i in events[-1].response.output if i.type == "mcp_call"]
    assert [(c.name, c.output) for c in calls] == [("add", "5"), ("multiply", "42")]
