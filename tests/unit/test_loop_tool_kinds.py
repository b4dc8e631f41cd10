"""Calls the loop reports as function calls: namespace tools, and unknown names without MCP servers."""

from __future__ import annotations

from tests.unit.test_loop_events import ScriptedTurns
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.loop.runner import AgentLoop
from vllm_mcp_ext.types.parts import TextDelta, ToolCallDelta
from vllm_mcp_ext.types.request import ResponsesRequest

SPAWN = {"type": "function", "function": {"name": "agents__spawn", "description": "", "parameters": {}}}


async def run(loop: AgentLoop, req: ResponsesRequest) -> list:
    context = ParsableContext(messages=[{"role": "user", "content": "go"}])
    plan = await loop.prepare(req, context)
    return [e async for e in loop.events(Run(req, context, plan))]


async def respond(turns, **fields):
    req = ResponsesRequest(id="resp_1", model="scripted", function_tools=[SPAWN], **fields)
    loop = AgentLoop(ScriptedTurns(turns), Settings(max_turns=3))
    events = await run(loop, req)
    return events[-1].response


async def test_a_namespace_tool_call_is_reported_by_its_name_and_namespace() -> None:
    turns = [[ToolCallDelta(0, "agents__spawn"), ToolCallDelta(0, arguments="{}")]]
    final = await respond(turns, namespaced={"agents__spawn": ("agents", "spawn")})
    [call] = final.output
    assert (call.type, call.name, call.namespace, call.arguments) == (
        "function_call",
        "spawn",
        "agents",
        "{}",
    )
    assert final.status == "completed"


async def test_without_mcp_servers_an_unknown_tool_name_goes_back_to_the_client() -> None:
    turns = [[TextDelta("Let me."), ToolCallDelta(0, "add"), ToolCallDelta(0, arguments='{"a": 1}')]]
    final = await respond(turns)
    assert [i.type for i in final.output] == ["message", "function_call"]
    assert (final.output[1].name, final.output[1].namespace) == ("add", None)


async def test_each_turn_carries_the_reasoning_effort() -> None:
    seen = []

    class Recording(ScriptedTurns):
        async def run_turn(self, turn):
            seen.append(turn.reasoning_effort)
            async for part in super().run_turn(turn):
                yield part

    req = ResponsesRequest(id="resp_1", model="scripted", reasoning_effort="high")
    loop = AgentLoop(Recording([[TextDelta("Done.")]]), Settings(max_turns=3))
    await run(loop, req)
    assert seen == ["high"]
