"""``/v1/chat/completions`` with mcp tools, in process (tests/support/asgi.py): the plugin's real
routes and the calculator MCP server over stdio, a scripted engine, the real `openai` SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.support.scripted import ScriptedTurns, play, tool_call
from vllm_mcp_ext.types.parts import TextDelta

MCP: dict[str, Any] = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = [{"role": "user", "content": "2+3?"}]


pytestmark = pytest.mark.usefixtures("engine")  # tests/unit/conftest.py: the shared app, reset


async def test_the_answer_is_a_chat_completion_with_the_mcp_calls_beside_it(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    c = await client.chat.completions.create(model="scripted", messages=ASK, tools=[MCP])  # type: ignore[list-item]
    choice = c.choices[0]
    assert (choice.message.content, choice.finish_reason, choice.message.tool_calls) == (
        "It is 5.",
        "stop",
        None,
    )
    calls = choice.message.model_extra["mcp_calls"]  # type: ignore[index]
    assert [(x["server_label"], x["name"], x["arguments"], x["output"], x["error"]) for x in calls] == [
        ("calc", "add", '{"a": 2, "b": 3}', "5", None)
    ]
    assert c.id.startswith("chatcmpl-") and c.object == "chat.completion"
    assert c.usage is not None and (c.usage.prompt_tokens, c.usage.completion_tokens) == (20, 10)
    assert c.usage.prompt_tokens_details is not None and c.usage.prompt_tokens_details.cached_tokens == 8
    assert engine.seen[1][-1] == {
        "role": "tool",
        "tool_call_id": engine.seen[1][-2]["tool_calls"][0]["id"],
        "content": "5",
    }


async def test_the_stream_has_stock_chunks_and_one_chunk_per_mcp_call(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="scripted",
        messages=ASK,
        tools=[MCP],
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[list-item]
    )
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta.model_dump(exclude_unset=True) if c.choices else None for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d for d in deltas if d and "mcp_calls" in d] == [
        {
            "mcp_calls": [
                {
                    "id": chunks[1].choices[0].delta.model_extra["mcp_calls"][0]["id"],  # type: ignore[index]
                    "server_label": "calc",
                    "name": "add",
                    "arguments": '{"a": 2, "b": 3}',
                    "output": "5",
                    "error": None,
                    "approval_request_id": None,
                }
            ]
        }
    ]
    assert "".join(d.get("content", "") for d in deltas if d) == "It is 5."
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None] * (len(chunks) - 2) + ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 30
    assert len({c.id for c in chunks}) == 1


async def test_the_sdk_stream_helper_accumulates_the_same_message(client: openai.AsyncOpenAI) -> None:
    async with client.chat.completions.stream(model="scripted", messages=ASK, tools=[MCP]) as stream:  # type: ignore[list-item]
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "It is 5." and final.choices[0].finish_reason == "stop"


async def test_a_function_tool_comes_back_as_tool_calls_for_the_client(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("get_weather", '{"city": "Paris"}'))
    c = await client.chat.completions.create(model="scripted", messages=ASK, tools=[MCP, WEATHER])  # type: ignore[list-item]
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name, call.function.arguments) == (
        "function",
        "get_weather",
        '{"city": "Paris"}',
    )


async def test_streamed_function_calls_accumulate_in_the_sdk(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("get_weather", '{"city": "Paris"}'), tool_call("get_weather", "{}"))
    async with client.chat.completions.stream(model="scripted", messages=ASK, tools=[MCP, WEATHER]) as stream:  # type: ignore[list-item]
        final = await stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    [call] = final.choices[0].message.tool_calls or []
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')


async def test_the_client_sends_its_tool_result_back_and_the_model_answers(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("get_weather", '{"city": "Paris"}'), [TextDelta("Sunny.")])
    first = await client.chat.completions.create(model="scripted", messages=ASK, tools=[MCP, WEATHER])  # type: ignore[list-item]
    message = first.choices[0].message
    [call] = message.tool_calls or []
    history: list[Any] = [*ASK, message.model_dump(exclude_none=True)]
    history.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    second = await client.chat.completions.create(model="scripted", messages=history, tools=[MCP, WEATHER])  # type: ignore[list-item]
    assert second.choices[0].message.content == "Sunny."
    assert engine.seen[1][-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert engine.seen[1][-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}


async def test_an_approval_ends_the_completion_and_the_answer_runs_the_call(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("It is 5.")], [TextDelta("Bye.")])
    tools: Any = [{**MCP, "require_approval": "always"}]
    first = await client.chat.completions.create(model="scripted", messages=ASK, tools=tools)
    message = first.choices[0].message
    [request] = message.model_extra["mcp_approval_requests"]  # type: ignore[index]
    assert (request["server_label"], request["name"], request["arguments"]) == (
        "calc",
        "add",
        '{"a": 2, "b": 3}',
    )
    assert first.choices[0].finish_reason == "stop" and message.content == ""
    history: list[Any] = [*ASK, message.model_dump(exclude_none=True)]
    answer = {"mcp_approval_responses": [{"approval_request_id": request["id"], "approve": True}]}
    second = await client.chat.completions.create(
        model="scripted", messages=history, tools=tools, extra_body=answer
    )
    reply = second.choices[0].message
    assert reply.content == "It is 5."
    [ran] = reply.model_extra["mcp_calls"]  # type: ignore[index]
    assert (ran["output"], ran["approval_request_id"]) == ("5", request["id"])
    # The history replays as the Responses items did: the approved call ran once, the model saw its result.
    history += [reply.model_dump(exclude_none=True), {"role": "user", "content": "thanks"}]
    third = await client.chat.completions.create(model="scripted", messages=history, tools=tools)
    assert third.choices[0].message.content == "Bye."
    assert [m["role"] for m in engine.seen[2]] == ["user", "assistant", "tool", "assistant", "user"]
    assert engine.seen[2][2]["content"] == "5"


async def test_a_forced_mcp_tool_choice_is_the_core_s(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine, tool_call("multiply", '{"a": 4, "b": 5}'), [TextDelta("20.")])
    choice: Any = {"type": "mcp", "server_label": "calc", "name": "multiply"}
    c = await client.chat.completions.create(model="scripted", messages=ASK, tools=[MCP], tool_choice=choice)  # type: ignore[list-item]
    assert c.choices[0].message.content == "20."


async def test_client_errors_are_openai_errors_naming_chat_fields(client: openai.AsyncOpenAI) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"tools": [{"type": "mcp", "server_label": "nope"}]},
            "tools[0].server_label",
            "unknown_server_label",
        ),
        ({"tools": [{**MCP, "server_url": "http://169.254.169.254/mcp"}]}, "tools[0].server_url", ""),
        (
            {"messages": [*ASK, {"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[1].content[0]",
            "",
        ),
        ({"seed": 3}, "seed", "unsupported_parameter"),
        ({"max_completion_tokens": 0}, "max_completion_tokens", "invalid_value"),
        (
            {"tool_choice": {"type": "mcp", "server_label": "other"}},
            "tool_choice.server_label",
            "invalid_tool_choice",
        ),
    ]
    for extra, param, code in cases:
        kwargs: dict[str, Any] = {"model": "scripted", "messages": ASK, "tools": [MCP], **extra}
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(**kwargs)
        error = info.value.body
        assert isinstance(error, dict) and error["param"] == param, (extra, error)
        assert error["type"] == "invalid_request_error" and (not code or error["code"] == code), error


async def test_an_unknown_model_is_a_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="other", messages=ASK, tools=[MCP])  # type: ignore[list-item]


async def test_a_body_that_is_not_json_is_a_400(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/chat/completions", content=b"[1]")
    assert r.status_code == 400 and json.loads(r.content)["error"]["type"] == "invalid_request_error"


async def test_a_failure_mid_response_is_an_openai_error_streamed_or_not(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    play(engine)  # the engine has no turn to give: the response fails after it started
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="scripted", messages=ASK, tools=[MCP])  # type: ignore[list-item]
    stream = await client.chat.completions.create(model="scripted", messages=ASK, tools=[MCP], stream=True)  # type: ignore[list-item]
    with pytest.raises(openai.APIError, match="failed"):
        async for _ in stream:
            pass
