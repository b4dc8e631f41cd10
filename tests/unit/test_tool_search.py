"""Tool search with a scripted engine and a 121-tool MCP server in memory: deferred tools stay out
of the prompt, tool_search finds them by BM25 and the model calls what it found; its items are
the openai SDK's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.client.client import Client

from tests.e2e.servers.many_tools import TOOL_COUNT, build
from tests.unit.test_loop_events import InMemoryConnection
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.loop.runner import AgentLoop
from vllm_mcp_ext.loop.tool_search import SEARCH_FUNCTION, Deferred, ToolIndex, words
from vllm_mcp_ext.responses.request import parse_request
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta, TurnEnd, TurnRequest, TurnUsage


class Recording:
    model_name = "scripted"

    def __init__(self, turns: list[list[Part]]):
        self.turns = list(turns)
        self.seen: list[TurnRequest] = []

    async def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        self.seen.append(turn)
        for part in self.turns.pop(0):
            yield part
        yield TurnEnd("stop", TurnUsage(prompt_tokens=10, output_tokens=5))


def call(name: str, arguments: dict[str, Any]) -> list[Part]:
    return [ToolCallDelta(0, name), ToolCallDelta(0, arguments=json.dumps(arguments))]


def body(*tools: dict[str, Any]) -> dict[str, Any]:
    return {"model": "scripted", "input": "go", "tools": list(tools)}


MANY = {"type": "mcp", "server_label": "many", "require_approval": "never", "defer_loading": True}
SEARCH = {"type": "tool_search"}


class OneServer(ToolServerRegistry):
    """The in-memory server as if configured with --tool-server under its label."""

    def __init__(self, source: Any):
        super().__init__((), Settings())
        self.source = source

    def get(self, label: str) -> Any:
        return self.source if label == self.source.label else None

    @property
    def labels(self) -> list[str]:
        return [self.source.label]


async def respond(engine: Recording, raw: dict[str, Any]) -> Any:
    async with Client(build()) as client:
        source = InMemoryConnection(client)
        source.label = "many"
        registry = OneServer(source)
        context = ParsableContext()
        req = parse_request(raw, registry, "scripted", context)
        loop = AgentLoop(engine, Settings(max_turns=4))
        plan = await loop.prepare(req, context)
        events = [e async for e in loop.events(Run(req, context, plan))]
    return events


def test_words_split_names_the_way_people_write_them() -> None:
    assert words("getPullRequest list_issues Add-Comment") == [
        "get",
        "pull",
        "request",
        "list",
        "issues",
        "add",
        "comment",
    ]


def test_bm25_ranks_the_rarer_matching_word_higher() -> None:
    def tool(name: str, description: str) -> Deferred:
        return Deferred({"type": "function", "function": {"name": name, "description": description}})

    index = ToolIndex(
        [
            tool("list_issue", "List issues."),
            tool("get_issue", "Get one issue."),
            tool("forecast", "Weather forecast for a city."),
        ]
    )
    assert [t.name for t in index.search("weather in Paris")] == ["forecast"]
    assert [t.name for t in index.search("get an issue")][:1] == ["get_issue"]
    assert index.search("nothing matches this") == []


async def test_deferred_tools_stay_out_of_the_prompt_until_tool_search_finds_them() -> None:
    engine = Recording(
        [
            call("tool_search", {"query": "add two integers"}),
            call("add", {"a": 2, "b": 3}),
            [TextDelta("5.")],
        ]
    )
    events = await respond(engine, body(MANY, SEARCH))
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "5."
    first, second, third = engine.seen
    assert [t["function"]["name"] for t in first.tools] == ["tool_search"]  # not 121 tools
    assert first.tools == second.tools == third.tools  # the prompt's tools never change: the prefix holds
    assert first.loaded_tools == ("tool_search",) and "add" in third.loaded_tools
    kinds = [i.type for i in final.output]
    assert kinds == ["mcp_list_tools", "tool_search_call", "tool_search_output", "mcp_call", "message"]
    listing, search, found, ran, _ = final.output
    assert len(listing.tools) == TOOL_COUNT
    assert (search.arguments, search.execution, search.status) == (
        {"query": "add two integers"},
        "server",
        "completed",
    )
    assert found.call_id == search.call_id and found.tools[0].type == "mcp"
    assert found.tools[0].server_label == "many" and found.tools[0].allowed_tools[0] == "add"
    assert (ran.name, ran.output) == ("add", "5")
    # the model saw the found definitions as the search's result, after what the engine held
    result = next(m for m in second.messages if m["role"] == "tool")["content"]
    assert '"name": "add"' in result and '"description": "Add two integers."' in result
    types = [e.type for e in events]
    assert types.count("response.output_item.added") == types.count("response.output_item.done") == 5


async def test_a_deferred_function_tool_is_found_too() -> None:
    weather = {
        "type": "function",
        "name": "get_forecast",
        "description": "Weather forecast for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "defer_loading": True,
    }
    engine = Recording(
        [call("tool_search", {"query": "weather forecast"}), call("get_forecast", {"city": "Paris"})]
    )
    events = await respond(engine, body(MANY, weather, SEARCH))
    final = events[-1].response
    assert [t["function"]["name"] for t in engine.seen[0].tools] == ["tool_search"]
    found = final.output[2]
    assert [(t.type, t.name) for t in found.tools] == [("function", "get_forecast")]
    assert final.output[-1].type == "function_call" and final.output[-1].name == "get_forecast"


def test_defer_loading_without_tool_search_is_a_400() -> None:
    registry = ToolServerRegistry((), Settings())
    fn = {"type": "function", "name": "f", "parameters": {"type": "object"}, "defer_loading": True}
    with pytest.raises(InvalidRequest, match="tool_search"):
        parse_request(body(fn), registry, "scripted")
    with pytest.raises(Unsupported):
        parse_request(body(fn, {"type": "tool_search", "execution": "client"}), registry, "scripted")


def test_the_search_function_is_what_the_model_is_shown() -> None:
    assert SEARCH_FUNCTION["function"]["parameters"]["required"] == ["query"]
