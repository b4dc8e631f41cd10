"""The agent loop: list tools, then model turn -> MCP calls -> model turn ... until an answer.

`AgentLoop.prepare` does everything that can still fail the request with a 400 (listing tools,
resolving ``tool_choice``); `AgentLoop.events` then streams the response. The non-streaming
response is the last event of the same stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from openai.types.responses import ResponseStreamEvent

from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.engine.chat_template import ModelTurns
from vllm_mcp_ext.engine.parts import TurnRequest
from vllm_mcp_ext.errors import InvalidRequest, McpExtError
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.loop.calls import CallOutcome, parse_arguments, run_call, unknown_tool
from vllm_mcp_ext.loop.request import ForcedTool, LoopRequest, McpServerUse
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet, filter_allowed, listed_tool
from vllm_mcp_ext.loop.turn import PendingCall, TurnBuilder
from vllm_mcp_ext.servers.connection import ServerUnavailable
from vllm_mcp_ext.servers.source import ToolSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    label: str
    tools: tuple[Any, ...]
    error: str | None


@dataclass(frozen=True)
class Plan:
    listings: list[Listing]
    toolset: ToolSet
    tools: list[dict[str, Any]]  # every tool, as the model sees them after the first turn
    first_tools: list[dict[str, Any]]
    first_choice: str | dict[str, Any]


class AgentLoop:
    def __init__(self, turns: ModelTurns, settings: Settings):
        self.turns = turns
        self.settings = settings

    # -- before the response starts -------------------------------------------------------

    async def prepare(self, req: LoopRequest) -> Plan:
        listings = await asyncio.gather(*(self._list(use) for use in req.servers))
        function_names = [t["function"]["name"] for t in req.function_tools]
        toolset = ToolSet.build(
            (ServerTools(x.label, x.tools) for x in listings if x.error is None),
            reserved=function_names,
        )
        tools = toolset.function_params() + req.function_tools
        choice = req.tool_choice
        if not isinstance(choice, ForcedTool):
            return Plan(list(listings), toolset, tools, tools, choice)
        if choice.kind == "function":
            if choice.name not in function_names:
                raise InvalidRequest(
                    f"tool_choice names function {choice.name!r}, which is not in tools",
                    param="tool_choice",
                )
            return Plan(list(listings), toolset, tools, tools, _named(choice.name))
        listing = next(x for x in listings if x.label == choice.server_label)
        if listing.error is not None:
            raise InvalidRequest(
                f"tool_choice names MCP server {choice.server_label!r}, which is unavailable: "
                f"{listing.error}",
                param="tool_choice",
            )
        if choice.name is None:  # any tool of that server
            server_tools = [t.function_param() for t in toolset.tools if t.server_label == listing.label]
            return Plan(list(listings), toolset, tools, server_tools, "required")
        forced = toolset.find(listing.label, choice.name)
        if forced is None:
            allowed = ", ".join(t.name for t in listing.tools) or "none"
            raise InvalidRequest(
                f"tool_choice names tool {choice.name!r} of server {listing.label!r}, which is not "
                f"among its allowed tools ({allowed})",
                param="tool_choice.name",
            )
        return Plan(list(listings), toolset, tools, tools, _named(forced.exposed_name))

    async def _list(self, use: McpServerUse) -> Listing:
        try:
            tools = await use.source.current_tools()
        except ServerUnavailable as exc:
            return Listing(use.label, (), exc.message)
        return Listing(use.label, filter_allowed(tools, use.allowed), None)

    # -- the response ---------------------------------------------------------------------

    async def events(self, req: LoopRequest, plan: Plan) -> AsyncIterator[ResponseStreamEvent]:
        stream = ResponseStream(req.template)
        stream.start()
        for listing in plan.listings:
            stream.list_tools(listing.label, [listed_tool(t) for t in listing.tools], listing.error)
        for event in stream.take():
            yield event
        try:
            async for event in self._turns(req, plan, stream):
                yield event
        except McpExtError as exc:
            stream.fail(exc.code or exc.type, exc.message)
        except Exception:
            logger.exception("response %s failed", req.template.id)
            stream.fail("server_error", "The server failed while generating this response.")
        for event in stream.take():
            yield event

    async def _turns(
        self, req: LoopRequest, plan: Plan, stream: ResponseStream
    ) -> AsyncIterator[ResponseStreamEvent]:
        messages = list(req.messages)
        tools, choice = plan.first_tools, plan.first_choice
        function_names = {t["function"]["name"] for t in req.function_tools}
        fallback_label = req.servers[0].label if req.servers else ""
        calls_made, tokens_used = 0, 0
        for turn_number in range(self.settings.max_turns):
            budget = None if req.max_output_tokens is None else req.max_output_tokens - tokens_used
            turn = TurnBuilder(stream, plan.toolset, function_names, fallback_label)
            async for part in self.turns.run_turn(
                TurnRequest(
                    request_id=f"{req.template.id}-{turn_number}",
                    messages=messages,
                    tools=tools,
                    tool_choice=choice,
                    max_tokens=budget,
                    temperature=req.temperature,
                    top_p=req.top_p,
                    parallel_tool_calls=req.parallel_tool_calls,
                )
            ):
                turn.feed(part)
                for event in stream.take():
                    yield event
            turn.close()
            for event in stream.take():  # arguments.done goes out before the calls run, not after
                yield event
            assert turn.end is not None
            stream.usage.add(turn.end.usage)
            tokens_used += turn.end.usage.output_tokens
            messages.append(turn.assistant_message())

            server_calls = [c for c in turn.calls if c.kind != "function"]
            room = None if req.max_tool_calls is None else max(req.max_tool_calls - calls_made, 0)
            runnable = server_calls if room is None else server_calls[:room]
            sources = {use.label: use.source for use in req.servers}
            outcomes = await asyncio.gather(*(self._run(c, plan.toolset, sources) for c in runnable))
            for call, outcome in zip(runnable, outcomes, strict=True):
                stream.close_mcp_call(call.output_index, outcome.output, outcome.error)
                messages.append({"role": "tool", "tool_call_id": call.call_id, "content": outcome.model_text})
            for call in server_calls[len(runnable) :]:
                stream.close_mcp_call_skipped(call.output_index)
            calls_made += len(runnable)
            for event in stream.take():
                yield event

            if len(runnable) < len(server_calls):
                stream.finish("max_tool_calls")
                return
            if any(c.kind == "function" for c in turn.calls) or not server_calls:
                length_cut = turn.end.finish_reason == "length"
                stream.finish("max_output_tokens" if length_cut else None)
                return
            if req.max_output_tokens is not None and tokens_used >= req.max_output_tokens:
                stream.finish("max_output_tokens")
                return
            tools, choice = plan.tools, "auto"
        stream.finish("max_turns")

    async def _run(self, call: PendingCall, toolset: ToolSet, sources: dict[str, ToolSource]) -> CallOutcome:
        if call.tool is None:
            return unknown_tool(call.exposed_name, toolset)
        arguments = parse_arguments(call.tool, call.arguments)
        if isinstance(arguments, CallOutcome):
            return arguments
        return await run_call(
            sources[call.tool.server_label], call.tool, arguments, max_output=self.settings.max_tool_output
        )


def _named(exposed_name: str | None) -> dict[str, Any]:
    return {"type": "function", "function": {"name": exposed_name}}
