"""Tool search end to end with a 121-tool MCP server (tests/e2e/servers/many_tools.py, served by
the remote test server at /many/mcp) and the session's vLLM server (2,048-token context): all
121 definitions do not fit, so naming the server is a 400 that says how many tokens they take.
Deferred behind a tool_search tool, the searching tiny model (tiny_model's ``model-search``, also
trained on the ``tool_search`` script of tests/support/scripts.py; served by a second vLLM server of
this module) searches for a tool, calls the deferred tool it found and answers with its result, on
/v1/responses and /v1/messages, streamed and not; each turn's trace shows that only the search
function was in the prompt, and the found tool from the search on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import remote_section, serve
from tests.support.scripts import SEARCH_USER
from tests.support.tiny_model import build_tiny_model

pytestmark = pytest.mark.e2e

BETA = ["mcp-client-2025-11-20"]
# What the model searches for and calls (the tool_search script), and what the tool answers.
QUERY = {"query": "watch webhook", "limit": 1}
CALLED = ("watch_webhook", {"id": "7"}, "watch_webhook 7: done")
ANSWER = "Watching webhook 7."


@pytest.fixture(scope="module")
def searching_server(
    remote_mcp_server: str, logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """vLLM with the plugin serving the searching model; its tools come by `server_url`."""
    config = tmp_path_factory.mktemp("search") / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {}, "remoteMcp": remote_section(remote_mcp_server)}))
    with serve(build_tiny_model(search=True), config, logs / "vllm-search.log") as url:
        yield url


def many(remote_mcp_server: str, **extra: Any) -> dict[str, Any]:
    url = f"{remote_mcp_server}/many/mcp"
    return {"type": "mcp", "server_label": "many", "server_url": url, "require_approval": "never", **extra}


def test_all_121_tools_loaded_do_not_fit_and_the_400_says_so(
    client: openai.OpenAI, remote_mcp_server: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="tiny", input="Add 2 and 3.", tools=[many(remote_mcp_server)])
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "context_length_exceeded"
    assert "of them the definitions of 121 tools" in error["message"] and "defer_loading" in error["message"]


def output_shape(items: list[Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for item in items:
        if item.type == "mcp_list_tools":
            out.append((item.type, item.server_label, len(item.tools)))
        elif item.type == "tool_search_call":
            out.append((item.type, item.execution, item.arguments, item.status))
        elif item.type == "tool_search_output":
            out.append((item.type, [(t.type, t.server_label, t.allowed_tools) for t in item.tools]))
        elif item.type == "mcp_call":
            out.append(
                (item.type, item.server_label, item.name, json.loads(item.arguments), item.output, item.error)
            )
        else:
            out.append((item.type, item.content[0].text))
    return out


FOUND_AND_CALLED = [
    ("mcp_list_tools", "many", 121),
    ("tool_search_call", "server", QUERY, "completed"),
    ("tool_search_output", [("mcp", "many", [CALLED[0]])]),
    ("mcp_call", "many", *CALLED, None),
    ("message", ANSWER),
]


@pytest.mark.parametrize("stream", [False, True])
def test_responses_tool_search_finds_and_calls_a_deferred_tool(
    searching_server: str, remote_mcp_server: str, stream: bool
) -> None:
    # not schema-captured: `tool_search` tools are newer than the Open Responses spec
    client = openai.OpenAI(base_url=f"{searching_server}/v1", api_key="unused", max_retries=0, timeout=120)
    tools: Any = [many(remote_mcp_server, defer_loading=True), {"type": "tool_search"}]
    args: Any = {"model": "tiny", "input": SEARCH_USER, "tools": tools, "temperature": 0}
    if stream:
        events = list(client.responses.create(**args, stream=True))
        assert events[-1].type == "response.completed"
        r = events[-1].response
        done = [e.item for e in events if e.type == "response.output_item.done"]
        assert output_shape(done) == FOUND_AND_CALLED
    else:
        r = client.responses.create(**args)
    assert r.status == "completed"
    assert output_shape(r.output) == FOUND_AND_CALLED
    search_call, search_output = r.output[1], r.output[2]
    assert search_output.call_id == search_call.call_id  # type: ignore[union-attr]
    turns = httpx.get(f"{searching_server}/v1/mcp/traces/{r.id}").json()["turns"]
    assert [t["loaded_tools"] for t in turns] == [
        ["tool_search"],
        ["tool_search", CALLED[0]],
        ["tool_search", CALLED[0]],
    ]
    assert turns[0]["prompt_tokens"] < 2048


def messages_shape(message: Any) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for b in message.content:
        if b.type == "server_tool_use":
            out.append((b.type, b.name, b.input))
        elif b.type == "tool_search_tool_result":
            out.append((b.type, b.content.type, [ref.tool_name for ref in b.content.tool_references]))
        elif b.type == "mcp_tool_use":
            out.append((b.type, b.server_name, b.name, b.input))
        elif b.type == "mcp_tool_result":
            out.append((b.type, b.is_error, [c.text for c in b.content]))
        else:
            out.append((b.type, getattr(b, "text", None)))
    return out


@pytest.mark.parametrize("stream", [False, True])
def test_messages_tool_search_finds_and_calls_a_deferred_tool(
    searching_server: str, remote_mcp_server: str, stream: bool
) -> None:
    claude = anthropic.Anthropic(base_url=searching_server, api_key="unused", max_retries=0, timeout=120)
    args: Any = {
        "model": "tiny",
        "max_tokens": 200,
        "extra_body": {"temperature": 0},  # greedy: the SDK has no argument for it
        "messages": [{"role": "user", "content": SEARCH_USER}],
        "mcp_servers": [{"type": "url", "url": f"{remote_mcp_server}/many/mcp", "name": "many"}],
        "tools": [
            {"type": "mcp_toolset", "mcp_server_name": "many", "default_config": {"defer_loading": True}},
            {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"},
        ],
        "betas": BETA,
    }
    if stream:
        with claude.beta.messages.stream(**args) as events:
            types = [event.type for event in events]
            m = events.get_final_message()
        assert types[0] == "message_start" and types[-1] == "message_stop"
    else:
        m = claude.beta.messages.create(**args)
    assert messages_shape(m) == [
        ("server_tool_use", "tool_search_tool_bm25", QUERY),
        ("tool_search_tool_result", "tool_search_tool_search_result", [CALLED[0]]),
        ("mcp_tool_use", "many", CALLED[0], CALLED[1]),
        ("mcp_tool_result", False, [CALLED[2]]),
        ("text", ANSWER),
    ]
    assert m.content[1].tool_use_id == m.content[0].id  # type: ignore[union-attr]
    assert m.content[3].tool_use_id == m.content[2].id  # type: ignore[union-attr]
    assert m.stop_reason == "end_turn"


def test_messages_with_all_121_tools_loaded_is_a_400_that_says_so(
    vllm_server: str, remote_mcp_server: str
) -> None:
    claude = anthropic.Anthropic(base_url=vllm_server, api_key="unused", max_retries=0, timeout=120)
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.beta.messages.create(
            model="tiny",
            max_tokens=24,
            messages=[{"role": "user", "content": "Add 2 and 3."}],
            mcp_servers=[{"type": "url", "url": f"{remote_mcp_server}/many/mcp", "name": "many"}],
            tools=[{"type": "mcp_toolset", "mcp_server_name": "many"}],
            betas=BETA,
        )
    body = info.value.body
    assert isinstance(body, dict) and "of them the definitions of 121 tools" in body["error"]["message"]
