"""Limits the loop keeps with a scripted engine and the in-memory calculator: a first turn that
cannot fit (a 400 with the counts), a later one (incomplete), tool results cut to their token
budget, max_tool_calls spent (tools off, the model answers), repeated identical calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp.client.client import Client

from tests.unit.test_loop_events import ADD_CALL, InMemoryConnection, ScriptedTurns, load_calculator, request
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.engine.fit import CUT_MARKER, PromptSize
from vllm_mcp_ext.engine.parser import ChatTemplateParser
from vllm_mcp_ext.errors import ContextTooLong
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.loop.guards import REPEAT_NOTE, TOOLS_OFF_LIMIT, TOOLS_OFF_REPEATS, TOOLS_OFF_TURNS
from vllm_mcp_ext.loop.run import Run
from vllm_mcp_ext.loop.runner import NOT_RUN_LIMIT, AgentLoop
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta, TurnEnd, TurnRequest, TurnUsage


class Measuring:
    """A scripted engine that counts words as tokens, with a context window of ``window``."""

    model_name = "scripted"

    def __init__(self, turns: list[list[Part]], window: int = 1000, too_long_at: int | None = None):
        self.turns = list(turns)
        self.context_window = window
        self.too_long_at = too_long_at  # the turn whose prompt no longer fits
        self.seen: list[TurnRequest] = []
        self.measured: list[PromptSize] = []

    async def prompt_size(self, turn: TurnRequest) -> PromptSize:
        text = " ".join(str(m.get("content")) for m in turn.messages)
        tools = sum(len(str(t).split()) for t in turn.tools)
        size = PromptSize(len(text.split()) + tools, tools, self.context_window, len(turn.tools))
        self.measured.append(size)
        return size

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def cut_to_tokens(self, text: str, budget: int) -> tuple[str, int] | None:
        words = text.split(" ")
        return None if len(words) <= budget else (" ".join(words[:budget]), len(words))

    async def run_turn(self, turn: TurnRequest) -> AsyncIterator[Part]:
        self.seen.append(turn)
        if self.too_long_at == len(self.seen):
            raise ContextTooLong("the conversation (1200 tokens) no longer fits", param="input")
        for part in self.turns.pop(0):
            yield part
        yield TurnEnd("stop", TurnUsage(prompt_tokens=10, output_tokens=5))


def calculator_with_echo() -> Any:
    server = load_calculator()

    @server.tool(description="Say the text back.")
    def echo(text: str) -> str:
        return text

    return server


async def respond(engine: Measuring, settings: Settings | None = None, **kw: Any) -> Any:
    async with Client(calculator_with_echo()) as client:
        loop = AgentLoop(engine, settings or Settings(max_turns=4))
        req = request(InMemoryConnection(client), **kw)
        context = ParsableContext(messages=[{"role": "user", "content": "2+3?"}])
        plan = await loop.prepare(req, context)
        events = [e async for e in loop.events(Run(req, context, plan))]
    return events[-1].response


def call(name: str, arguments: str, index: int = 0) -> list[Part]:
    return [ToolCallDelta(index, name), ToolCallDelta(index, arguments=arguments)]


def tool_results(turn: TurnRequest) -> list[Any]:
    return [m["content"] for m in turn.messages if m["role"] == "tool"]


async def test_a_first_turn_past_the_context_window_is_refused_with_its_counts() -> None:
    engine = Measuring([], window=50)
    async with Client(calculator_with_echo()) as client:
        loop = AgentLoop(engine, Settings())
        context = ParsableContext(messages=[{"role": "user", "content": "2+3?"}])
        with pytest.raises(ContextTooLong) as refused:
            await loop.prepare(request(InMemoryConnection(client)), context)
    error = refused.value
    assert (error.status, error.code, error.param) == (400, "context_length_exceeded", "input")
    # the calculator's definitions take most of it: the message says how many and what to do
    size = engine.measured[0]
    assert size.tool_tokens > 40 and size.tool_count == 5
    assert f"The prompt is {size.tokens} tokens ({size.tool_tokens} of them the definitions of 5 tools" in (
        error.message
    )
    assert "context window is 50 tokens" in error.message and "defer_loading" in error.message
    assert engine.seen == []  # no turn ran


async def test_a_later_turn_that_no_longer_fits_ends_incomplete_for_length() -> None:
    engine = Measuring([ADD_CALL], too_long_at=2)
    final = await respond(engine)
    assert final.status == "incomplete"
    assert final.incomplete_details.reason == "max_output_tokens"
    assert [(i.type, i.status) for i in final.output[1:]] == [("mcp_call", "completed")]


async def test_a_tool_result_past_its_token_budget_reaches_the_model_cut_and_the_client_whole() -> None:
    long_text = " ".join(f"w{i}" for i in range(30))
    engine = Measuring([call("echo", json.dumps({"text": long_text})), [TextDelta("ok")]])
    final = await respond(engine, Settings(max_turns=4, max_tool_result_tokens=10))
    item = final.output[1]
    assert item.output == long_text  # the client's item is whole
    [seen] = tool_results(engine.seen[1])
    kept = " ".join(f"w{i}" for i in range(10))
    assert seen == kept + CUT_MARKER.format(total=30, kept=10)


async def test_the_default_result_budget_is_a_quarter_of_the_context_window() -> None:
    long_text = " ".join(f"w{i}" for i in range(60))
    engine = Measuring([call("echo", json.dumps({"text": long_text})), [TextDelta("ok")]], window=160)
    await respond(engine)
    [seen] = tool_results(engine.seen[1])
    assert seen == " ".join(f"w{i}" for i in range(40)) + CUT_MARKER.format(total=60, kept=40)


async def test_spent_max_tool_calls_take_the_tools_away_and_the_model_answers() -> None:
    add_then_multiply = [*ADD_CALL, *call("multiply", '{"a": 5, "b": 2}', 1)]
    engine = Measuring([add_then_multiply, [TextDelta("5, and I could not multiply.")]])
    final = await respond(engine, max_tool_calls=1)
    assert final.status == "completed" and final.incomplete_details is None
    assert final.output_text == "5, and I could not multiply."
    assert [(i.type, i.status) for i in final.output[1:3]] == [
        ("mcp_call", "completed"),
        ("mcp_call", "incomplete"),
    ]
    first, second = engine.seen
    assert first.tools and (second.tools, second.tool_choice) == ([], "none")
    assert tool_results(second) == ["5", NOT_RUN_LIMIT + TOOLS_OFF_LIMIT]


async def test_tools_go_away_when_the_last_allowed_call_ran() -> None:
    engine = Measuring([ADD_CALL, [TextDelta("5.")]])
    final = await respond(engine, max_tool_calls=1, function_tools=[_LOOKUP])
    assert final.status == "completed" and final.output_text == "5."
    second = engine.seen[1]
    # the client's function tools stay: they do not count against max_tool_calls
    assert ([t["function"]["name"] for t in second.tools], second.tool_choice) == (["lookup"], "auto")
    assert tool_results(second) == ["5" + TOOLS_OFF_LIMIT]


_LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


async def test_a_repeated_identical_call_gets_the_earlier_result_without_running_again() -> None:
    again = call("add", '{"b": 3, "a": 2}')  # same arguments, other order
    engine = Measuring([ADD_CALL, again, [TextDelta("5.")]])
    final = await respond(engine, Settings(max_turns=5, max_repeated_calls=2))
    calls = [i for i in final.output if i.type == "mcp_call"]
    assert [(c.output, c.status) for c in calls] == [("5", "completed"), ("5", "completed")]
    assert tool_results(engine.seen[2]) == ["5", "5" + REPEAT_NOTE]
    assert engine.seen[2].tools  # one repeat: tools stay on
    assert final.status == "completed"


async def test_repeating_calls_past_the_limit_turns_tools_off() -> None:
    engine = Measuring([ADD_CALL, ADD_CALL, ADD_CALL, [TextDelta("5.")]])
    final = await respond(engine, Settings(max_turns=6, max_repeated_calls=2))
    assert final.status == "completed" and final.output_text == "5."
    last = engine.seen[3]
    assert (last.tools, last.tool_choice) == ([], "none")
    assert tool_results(last)[-1] == "5" + REPEAT_NOTE + TOOLS_OFF_REPEATS.format(repeats=2)


def test_a_turn_cut_at_its_token_limit_never_turns_held_call_markup_into_text() -> None:
    class Holding:  # a tool parser that holds an unfinished call back
        def parse_delta(self, **_: Any) -> None:
            return None

    parser = ChatTemplateParser(Holding(), request=None, incremental=False)
    parser.feed('<tool_call>\n{"name": "add", "argu', [1, 2], None, True)
    assert parser.close(cut=True) == []
    # a turn that ended on its own still shows what the parser could not read
    assert parser.close() == [TextDelta('<tool_call>\n{"name": "add", "argu')]


async def test_the_last_turn_the_server_allows_runs_without_tools_so_the_model_answers() -> None:
    engine = Measuring([ADD_CALL, call("multiply", '{"a": 5, "b": 2}'), [TextDelta("10.")]])
    final = await respond(engine, Settings(max_turns=3))
    assert final.status == "completed" and final.output_text == "10."
    assert engine.seen[1].tools and (engine.seen[2].tools, engine.seen[2].tool_choice) == ([], "none")
    assert tool_results(engine.seen[2]) == ["5", "10" + TOOLS_OFF_TURNS]


def test_a_first_turn_measured_before_the_response_is_rendered_once() -> None:
    from vllm_mcp_ext.engine.chat_template import MeasuredPrompts, Prompt
    from vllm_mcp_ext.types.parts import HeldTokens, RenderedFrom

    def source(text: str) -> RenderedFrom:
        return RenderedFrom("settings", f'[{{"role": "user", "content": "{text}"}}]', 1)

    hi = Prompt(([1, 2], "hi"), source=source("hi"))
    kept = MeasuredPrompts()
    kept.put("resp_1-0", None, hi)
    assert kept.take("resp_1-0", source("other"), None) is None  # another conversation: rendered anew
    kept.put("resp_1-0", None, hi)
    assert kept.take("resp_1-0", source("hi"), None) is hi
    assert kept.take("resp_1-0", source("hi"), None) is None  # taken once
    held = HeldTokens("hi", [1, 2], [3])
    kept.put("resp_1-0", held, Prompt(([1, 2, 3, 4], "hi"), continued=True, source=source("hi")))
    assert kept.take("resp_1-0", source("hi"), None) is None  # measured continuing other tokens
    for i in range(MeasuredPrompts.KEEP + 1):
        kept.put(f"r{i}", None, Prompt(([i], "hi"), source=source("hi")))
    assert kept.take("r0", source("hi"), None) is None  # bounded: the oldest went


async def test_past_the_compaction_threshold_the_model_summarizes_and_the_loop_goes_on() -> None:
    from vllm_mcp_ext.loop.compaction import COMPACT_PROMPT, decode, summary_message

    summary = "The user asked for 2+3; add returned 5."
    # a scripted engine that does not measure: the first turn's prompt is not estimated
    engine = ScriptedTurns([ADD_CALL, [TextDelta(summary)], [TextDelta("5.")]])
    async with Client(calculator_with_echo()) as client:
        loop = AgentLoop(engine, Settings(max_turns=4))
        req = request(InMemoryConnection(client), compact_threshold=15)  # one turn: 10 + 5 tokens
        context = ParsableContext(messages=[{"role": "user", "content": "2+3?"}])
        plan = await loop.prepare(req, context)
        events = [e async for e in loop.events(Run(req, context, plan))]
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "5."
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "compaction", "message"]
    assert decode(final.output[2].encrypted_content) == summary
    assert "response.compaction.compacting" in [e.type for e in events]
    summarizing, answering = engine.seen[1], engine.seen[2]
    assert summarizing[-1] == {"role": "user", "content": COMPACT_PROMPT}
    assert answering == [{"role": "user", "content": "2+3?"}, summary_message(summary)]
    assert final.usage.output_tokens == 15  # the summary's tokens count
    replayed = ParsableContext()
    replayed.add_item(final.output[2].model_dump(), "input[0]")
    assert replayed.messages == [summary_message(summary)]


def test_context_management_takes_compaction_entries_only() -> None:
    from vllm_mcp_ext.errors import InvalidRequest, Unsupported
    from vllm_mcp_ext.responses.request import parse_request
    from vllm_mcp_ext.servers import ToolServerRegistry

    def parse(value: Any) -> Any:
        body = {"model": "m", "input": "hi", "context_management": value}
        return parse_request(body, ToolServerRegistry((), Settings()), "m").compact_threshold

    assert parse([{"type": "compaction", "compact_threshold": 5000}]) == 5000
    assert parse([{"type": "compaction"}]) == 0  # a share of the context window
    assert parse(None) is None
    with pytest.raises(Unsupported):
        parse([{"type": "clear_everything"}])
    with pytest.raises(InvalidRequest):
        parse([{"type": "compaction", "compact_threshold": -1}])


def test_the_new_limits_come_from_the_environment_with_their_defaults() -> None:
    from vllm_mcp_ext.errors import ConfigError

    default = Settings.from_env({})
    assert (default.max_tool_result_tokens, default.max_repeated_calls) == (None, 2)
    env = {"VLLM_MCP_MAX_TOOL_RESULT_TOKENS": "500", "VLLM_MCP_MAX_REPEATED_CALLS": "4"}
    assert (Settings.from_env(env).max_tool_result_tokens, Settings.from_env(env).max_repeated_calls) == (
        500,
        4,
    )
    with pytest.raises(ConfigError, match="VLLM_MCP_MAX_TOOL_RESULT_TOKENS"):
        Settings.from_env({"VLLM_MCP_MAX_TOOL_RESULT_TOKENS": "0"})


async def test_a_summary_turn_that_cannot_fit_is_skipped_and_the_loop_goes_on() -> None:
    from vllm_mcp_ext.loop.compaction import COMPACT_PROMPT
    from vllm_mcp_ext.types.request import ResponsesRequest

    # words as tokens, a 20-word window: "2+3?" fits, with the summary instruction it does not
    engine = Measuring([[TextDelta("5.")]], window=20)
    loop = AgentLoop(engine, Settings(max_turns=2))
    req = ResponsesRequest(id="resp_1", model="scripted", compact_threshold=1)
    context = ParsableContext(messages=[{"role": "user", "content": "2+3?"}])
    plan = await loop.prepare(req, context)
    events = [e async for e in loop.events(Run(req, context, plan))]
    final = events[-1].response
    assert final.status == "completed" and [i.type for i in final.output] == ["message"]
    assert final.output_text == "5." and len(engine.seen) == 1  # no summary turn ran
    assert [s.tokens for s in engine.measured] == [1, 1 + len(COMPACT_PROMPT.split())]
