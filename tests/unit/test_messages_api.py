"""Anthropic ``/v1/messages`` with the MCP connector, in process (tests/support/asgi.py): the
plugin's real routes and the calculator MCP server over stdio, a scripted engine, the real
``anthropic`` SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.support.asgi import BASE_URL, httpx2_client
from tests.support.scripted import ScriptedTurns, play, tool_call
from vllm_mcp_ext.loop.context_edits import CLEARED
from vllm_mcp_ext.types.parts import TextDelta

BETA = ["mcp-client-2025-11-20"]
SERVERS: Any = [{"type": "url", "url": "tool-server://calc", "name": "calc"}]
TOOLSET: Any = {"type": "mcp_toolset", "mcp_server_name": "calc"}
ASK: Any = [{"role": "user", "content": "2+3?"}]
WEATHER: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


pytestmark = pytest.mark.usefixtures("engine")  # tests/unit/conftest.py: the shared app, reset


@pytest.fixture
def client(http: httpx.AsyncClient, engine: ScriptedTurns) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=BASE_URL, api_key="-", http_client=httpx2_client(http), max_retries=0
    )


def create(client: anthropic.AsyncAnthropic, **kw: Any) -> Any:
    args = {
        "model": "scripted",
        "max_tokens": 64,
        "messages": ASK,
        "mcp_servers": SERVERS,
        "tools": [TOOLSET],
        "betas": BETA,
    }
    return client.beta.messages.create(**{**args, **kw})


def blocks(message: Any) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for b in message.content:
        if b.type == "mcp_tool_use":
            out.append((b.type, b.server_name, b.name, b.input))
        elif b.type == "mcp_tool_result":
            out.append((b.type, b.is_error, [c.text for c in b.content]))
        elif b.type == "text":
            out.append((b.type, b.text))
        else:
            out.append((b.type, getattr(b, "name", None), getattr(b, "input", None)))
    return out


async def test_a_configured_server_runs_and_the_blocks_show_the_call(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns
) -> None:
    m = await create(client)
    assert blocks(m) == [
        ("mcp_tool_use", "calc", "add", {"a": 2, "b": 3}),
        ("mcp_tool_result", False, ["5"]),
        ("text", "It is 5."),
    ]
    assert m.content[0].id == m.content[1].tool_use_id
    assert (m.stop_reason, m.role, m.type) == ("end_turn", "assistant", "message")
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.output_tokens) == (12, 8, 10)
    assert engine.seen[1][-1]["content"] == "5"


async def test_the_stream_accumulates_to_the_same_message(client: anthropic.AsyncAnthropic) -> None:
    args: Any = {"mcp_servers": SERVERS, "tools": [TOOLSET], "betas": BETA}
    async with client.beta.messages.stream(model="scripted", max_tokens=64, messages=ASK, **args) as stream:
        types = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert blocks(final) == [
        ("mcp_tool_use", "calc", "add", {"a": 2, "b": 3}),
        ("mcp_tool_result", False, ["5"]),
        ("text", "It is 5."),
    ]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 10


async def test_a_toolset_naming_a_configured_server_needs_no_mcp_servers_entry(
    client: anthropic.AsyncAnthropic,
) -> None:
    m = await create(client, mcp_servers=[])
    assert [b.type for b in m.content] == ["mcp_tool_use", "mcp_tool_result", "text"]


async def test_a_denylisted_tool_is_not_shown_and_not_run(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("No.")])
    toolset = {**TOOLSET, "configs": {"add": {"enabled": False}}}
    m = await create(client, tools=[toolset])
    [use, result, _] = m.content
    assert result.is_error and "add" in result.content[0].text
    assert use.name == "add"


async def test_a_custom_tool_is_a_tool_use_for_the_client(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("get_weather", '{"city": "Paris"}'))
    m = await create(client, tools=[TOOLSET, WEATHER])
    assert blocks(m) == [("tool_use", "get_weather", {"city": "Paris"})]
    assert m.stop_reason == "tool_use"


async def test_the_blocks_sent_back_continue_the_conversation(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("It is 5.")], [TextDelta("Bye.")])
    first = await create(client)
    history = [*ASK, {"role": "assistant", "content": [b.model_dump() for b in first.content]}]
    history.append({"role": "user", "content": "thanks"})
    second = await create(client, messages=history)
    assert blocks(second) == [("text", "Bye.")]
    assert [m["role"] for m in engine.seen[2]] == ["user", "assistant", "tool", "assistant", "user"]
    assert engine.seen[2][2]["content"] == "5"


async def test_tool_choice_may_name_a_connector_tool(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns
) -> None:
    engine.choices.clear()
    m = await create(client, tool_choice={"type": "tool", "name": "add"})
    assert [b.type for b in m.content] == ["mcp_tool_use", "mcp_tool_result", "text"]
    assert engine.choices == [{"type": "function", "function": {"name": "add"}}, "auto"]
    with pytest.raises(anthropic.BadRequestError) as info:
        await create(client, tool_choice={"type": "tool", "name": "nope"})
    assert isinstance(info.value.body, dict) and "'nope'" in info.value.body["error"]["message"]


SEARCH_BM25: Any = {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}
DEFERRED: Any = {**TOOLSET, "default_config": {"defer_loading": True}}


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_deferred_toolset_is_found_by_tool_search_and_called(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns, streamed: bool
) -> None:
    play(
        engine,
        tool_call("tool_search", '{"query": "add two integers"}'),
        tool_call("add", '{"a": 2, "b": 3}'),
        [TextDelta("5.")],
    )
    if streamed:
        args: Any = {"mcp_servers": SERVERS, "tools": [DEFERRED, SEARCH_BM25], "betas": BETA}
        async with client.beta.messages.stream(
            model="scripted", max_tokens=64, messages=ASK, **args
        ) as stream:
            m = await stream.get_final_message()
    else:
        m = await create(client, tools=[DEFERRED, SEARCH_BM25])
    assert [b.type for b in m.content] == [
        "server_tool_use",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "text",
    ]
    search, found = m.content[0], m.content[1]
    assert (search.name, search.input) == ("tool_search_tool_bm25", {"query": "add two integers"})
    assert found.tool_use_id == search.id
    assert found.content.tool_references[0].tool_name == "add"
    assert m.content[3].content[0].text == "5"
    # the model was shown the search, not the calculator's tools
    assert "Add two integers." in engine.seen[1][-1]["content"]


def history_with_calls(count: int) -> list[Any]:
    """A conversation a client sends back: ``count`` earlier add calls, then a new question."""
    content: list[Any] = []
    for i in range(count):
        content += [
            {
                "type": "mcp_tool_use",
                "id": f"mcptoolu_{i}",
                "name": "add",
                "server_name": "calc",
                "input": {"a": i, "b": 1},
            },
            {
                "type": "mcp_tool_result",
                "tool_use_id": f"mcptoolu_{i}",
                "content": [{"type": "text", "text": f"sum {i + 1}"}],
            },
        ]
    return [*ASK, {"role": "assistant", "content": content}, {"role": "user", "content": "and now?"}]


@pytest.mark.parametrize("streamed", [False, True])
async def test_context_management_clears_old_tool_results_before_the_turn(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns, streamed: bool
) -> None:
    play(engine, [TextDelta("Done.")])
    edits: Any = {
        "edits": [
            {
                "type": "clear_tool_uses_20250919",
                "trigger": {"type": "input_tokens", "value": 1},
                "keep": {"type": "tool_uses", "value": 1},
            }
        ]
    }
    args: Any = {"messages": history_with_calls(3), "context_management": edits}
    if streamed:
        base: Any = {"mcp_servers": SERVERS, "tools": [TOOLSET], "betas": BETA}
        async with client.beta.messages.stream(model="scripted", max_tokens=64, **base, **args) as stream:
            m = await stream.get_final_message()
    else:
        m = await create(client, **args)
    seen = [x["content"] for x in engine.seen[0] if x["role"] == "tool"]
    assert seen == [CLEARED, CLEARED, "sum 3"]
    assert m.context_management is not None
    [applied] = m.context_management.applied_edits
    assert (applied.type, applied.cleared_tool_uses) == ("clear_tool_uses_20250919", 2)
    assert applied.cleared_input_tokens > 0


async def test_an_unsupported_context_edit_is_an_anthropic_400(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await create(client, context_management={"edits": [{"type": "compact_20260112"}]})
    assert isinstance(info.value.body, dict) and "compact_20260112" in info.value.body["error"]["message"]


async def test_client_errors_are_anthropic_errors(client: anthropic.AsyncAnthropic) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mcp_servers": [], "tools": [{**TOOLSET, "mcp_server_name": "nope"}]}, "nope"),
        (
            {"mcp_servers": [{"type": "url", "url": "http://169.254.169.254/mcp", "name": "calc"}]},
            "URL policy",
        ),
        ({"tools": [{**TOOLSET, "configs": {"add": {"enabled": "no"}}}]}, "enabled"),
        ({"tools": [{**TOOLSET, "allowed": ["add"]}]}, "allowed"),
        ({"tools": []}, "not referenced"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}, TOOLSET]}, "web_search_20250305"),
    ]
    for extra, needle in cases:
        with pytest.raises(anthropic.BadRequestError) as info:
            await create(client, **extra)
        body = info.value.body
        assert isinstance(body, dict) and body["type"] == "error", body
        assert body["error"]["type"] == "invalid_request_error" and needle in body["error"]["message"], (
            extra,
            body,
        )


async def test_an_unknown_model_is_a_not_found_error(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        await create(client, model="other")
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "not_found_error"


async def test_a_failure_mid_response_is_an_anthropic_error_streamed_or_not(
    client: anthropic.AsyncAnthropic, engine: ScriptedTurns
) -> None:
    play(engine)  # the engine has no turn to give: the response fails after it started
    with pytest.raises(anthropic.InternalServerError) as info:
        await create(client)
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "api_error"
    with pytest.raises(anthropic.APIStatusError, match="api_error"):
        async with client.beta.messages.stream(
            model="scripted", max_tokens=64, messages=ASK, mcp_servers=SERVERS, tools=[TOOLSET], betas=BETA
        ) as stream:
            async for _ in stream:
                pass
