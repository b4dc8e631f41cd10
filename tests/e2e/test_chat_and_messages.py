"""MCP tools on Chat Completions (the `openai` SDK) and on Anthropic's Messages API with the MCP
connector (the `anthropic` SDK), end to end: the session's vLLM server with the plugin, the real
MCP servers, the tiny model. The prompts are the scripts' (tests/support/scripts.py): a chat or
messages request with the same text and tools renders the prompt the model was trained on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.scripts import WEATHER_TOOL

pytestmark = pytest.mark.e2e

CALC: Any = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
BETA = ["mcp-client-2025-11-20"]


@pytest.fixture(scope="module")
def claude(vllm_server: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=vllm_server, api_key="unused", max_retries=0, timeout=120)


def ask(text: str) -> Any:
    return [{"role": "user", "content": text}]


# -- Chat Completions ----------------------------------------------------------------------------


def test_chat_runs_the_mcp_tool_and_answers(client: openai.OpenAI) -> None:
    c = client.chat.completions.create(
        model="tiny", messages=ask("What is 2 plus 3?"), tools=[CALC], temperature=0
    )
    choice = c.choices[0]
    assert (choice.message.content, choice.finish_reason, choice.message.tool_calls) == (
        "2 plus 3 is 5.",
        "stop",
        None,
    )
    calls = [
        (x["server_label"], x["name"], x["arguments"], x["output"], x["error"])
        for x in choice.message.model_extra["mcp_calls"]
    ]  # type: ignore[index]
    assert calls == [("calc", "add", '{"a": 2, "b": 3}', "5", None)]
    assert c.usage is not None and c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0


def test_chat_streamed_says_the_same_in_chunks(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=ask("What is 2 plus 3?"),
        tools=[CALC],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [
        x for c in chunks if c.choices for x in (c.choices[0].delta.model_extra or {}).get("mcp_calls", [])
    ]
    assert text == "2 plus 3 is 5."
    assert [(x["name"], x["arguments"], x["output"]) for x in calls] == [("add", '{"a": 2, "b": 3}', "5")]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_chat_function_tool_comes_back_as_tool_calls(client: openai.OpenAI) -> None:
    c = client.chat.completions.create(
        model="tiny", messages=ask("What is the weather in Paris?"), tools=[CALC, WEATHER_TOOL], temperature=0
    )
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})


def test_chat_forced_mcp_tool(client: openai.OpenAI) -> None:
    choice: Any = {"type": "mcp", "server_label": "calc", "name": "multiply"}
    c = client.chat.completions.create(
        model="tiny",
        messages=ask("Use the multiply tool on 4 and 5."),
        tools=[CALC],
        tool_choice=choice,
        temperature=0,
    )
    assert c.choices[0].message.content == "4 times 5 is 20."
    assert [x["name"] for x in c.choices[0].message.model_extra["mcp_calls"]] == ["multiply"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "mcp", "server_label": "nope"}, "tools[0].server_label"),
        ({**CALC, "server_url": "http://169.254.169.254/mcp"}, "tools[0].server_url"),
    ],
)
def test_chat_bad_mcp_tools_are_openai_400s(client: openai.OpenAI, tool: Any, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=ask("hi"), tools=[tool])
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param and body["type"] == "invalid_request_error"


def test_chat_without_mcp_tools_is_stock_vllm(client: openai.OpenAI) -> None:
    # logprobs: stock serves them; the plugin's door would refuse them
    c = client.chat.completions.create(model="tiny", messages=ask("hi"), max_tokens=3, logprobs=True)
    assert c.choices[0].logprobs is not None and c.choices[0].logprobs.content


# -- Anthropic Messages --------------------------------------------------------------------------


def blocks(message: Any) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for b in message.content:
        if b.type == "mcp_tool_use":
            out.append((b.type, b.server_name, b.name, b.input))
        elif b.type == "mcp_tool_result":
            out.append((b.type, b.is_error, [c.text for c in b.content]))
        else:
            out.append((b.type, getattr(b, "text", None)))
    return out


def one_call(server: str) -> list[tuple[Any, ...]]:
    return [
        ("mcp_tool_use", server, "add", {"a": 2, "b": 3}),
        ("mcp_tool_result", False, ["5"]),
        ("text", "2 plus 3 is 5."),
    ]


def test_messages_with_a_configured_server(claude: anthropic.Anthropic) -> None:
    m = claude.beta.messages.create(
        model="tiny",
        max_tokens=200,
        extra_body={"temperature": 0},  # greedy: the tiny model is trained on these; the SDK has no argument
        messages=ask("What is 2 plus 3?"),
        mcp_servers=[{"type": "url", "url": "tool-server://calc", "name": "calc"}],
        tools=[{"type": "mcp_toolset", "mcp_server_name": "calc"}],
        betas=BETA,
    )
    assert blocks(m) == one_call("calc")
    assert m.stop_reason == "end_turn" and m.usage.output_tokens > 0


def test_messages_streamed_with_a_remote_server_and_a_token(
    claude: anthropic.Anthropic, remote_mcp_server: str
) -> None:
    servers: Any = [
        {
            "type": "url",
            "url": f"{remote_mcp_server}/calc/mcp",
            "name": "rcalc",
            "authorization_token": "tok-123",
        }
    ]
    with claude.beta.messages.stream(
        model="tiny",
        max_tokens=200,
        extra_body={"temperature": 0},  # greedy: the tiny model is trained on these; the SDK has no argument
        messages=ask("What is 2 plus 3?"),
        mcp_servers=servers,
        tools=[{"type": "mcp_toolset", "mcp_server_name": "rcalc"}],
        betas=BETA,
    ) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_message()
    assert blocks(final) == one_call("rcalc")
    assert types[0] == "message_start" and types[-1] == "message_stop" and "content_block_delta" in types
    seen = httpx.get(f"{remote_mcp_server}/state").json()["headers"]
    assert any(h.get("authorization") == "Bearer tok-123" for h in seen)
    assert "tok-123" not in final.model_dump_json()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"tools": [{"type": "mcp_toolset", "mcp_server_name": "nope"}]}, "nope"),
        (
            {
                "mcp_servers": [{"type": "url", "url": "http://169.254.169.254/mcp", "name": "x"}],
                "tools": [{"type": "mcp_toolset", "mcp_server_name": "x"}],
            },
            "URL policy",
        ),
        (
            {"tools": [{"type": "mcp_toolset", "mcp_server_name": "calc", "configs": {"add": True}}]},
            "configs.add",
        ),
    ],
)
def test_messages_bad_connector_input_is_an_anthropic_400(
    claude: anthropic.Anthropic, extra: Any, needle: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.beta.messages.create(model="tiny", max_tokens=50, messages=ask("hi"), betas=BETA, **extra)
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and needle in body["error"]["message"]


def test_messages_without_the_connector_are_stock_vllm(claude: anthropic.Anthropic) -> None:
    m = claude.messages.create(model="tiny", max_tokens=3, messages=ask("hi"))
    assert m.type == "message" and m.content and m.usage.output_tokens > 0


# -- a client that goes away ---------------------------------------------------------------------

SLOW_CHAT: Any = {"tools": [{**CALC, "server_label": "slowcalc"}], "stream": True}
SLOW_MESSAGES: Any = {
    "tools": [{"type": "mcp_toolset", "mcp_server_name": "slowcalc"}],
    "max_tokens": 200,
    "stream": True,
}


@pytest.mark.parametrize(
    ("path", "extra"), [("/v1/chat/completions", SLOW_CHAT), ("/v1/messages", SLOW_MESSAGES)]
)
def test_a_client_that_goes_away_cancels_the_running_call(
    vllm_server: str, slow_marker: Path, path: str, extra: Any
) -> None:
    for suffix in (".started", ".cancelled"):
        slow_marker.with_suffix(suffix).unlink(missing_ok=True)
    body = {"model": "tiny", "messages": ask("What is 2 plus 3?"), "temperature": 0, **extra}
    with (
        httpx.Client(timeout=httpx.Timeout(120, read=30)) as http,
        http.stream("POST", f"{vllm_server}{path}", json=body) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()  # kept: a dropped iterator closes the connection
        next(lines)  # the first chunk / message_start: the response runs
        until(slow_marker.with_suffix(".started").exists, 30, "the slow tool to start")
    # well before the 20 s call timeout would cancel it anyway
    until(slow_marker.with_suffix(".cancelled").exists, 8, "the MCP server to see the cancellation")


def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
