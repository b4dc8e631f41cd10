"""Tool search end to end with a 121-tool MCP server (tests/e2e/servers/many_tools.py, served by
the remote test server at /many/mcp) and the session's vLLM server (2,048-token context): all
121 definitions do not fit, so naming the server is a 400 that says how many tokens they take;
deferred behind a tool_search tool, the same request runs, and each turn's trace shows that only
the search function was in the prompt. (Finding and calling a deferred tool is covered with a
scripted engine in tests/unit/test_tool_search.py: the tiny model is not trained to search.)"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e

BETA = ["mcp-client-2025-11-20"]


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


@pytest.mark.parametrize("stream", [False, True])
def test_deferred_behind_tool_search_the_request_runs_with_one_tool_in_the_prompt(
    beyond_spec_client: openai.OpenAI, remote_mcp_server: str, vllm_server: str, stream: bool
) -> None:
    client = beyond_spec_client  # `tool_search` tools are newer than the Open Responses spec
    tools: Any = [many(remote_mcp_server, defer_loading=True), {"type": "tool_search"}]
    args: Any = {
        "model": "tiny",
        "input": "Add 2 and 3.",
        "tools": tools,
        "temperature": 0,
        "max_output_tokens": 24,
    }
    if stream:
        events = list(client.responses.create(**args, stream=True))
        assert events[-1].type in ("response.completed", "response.incomplete")
        r = events[-1].response
    else:
        r = client.responses.create(**args)
    assert r.status in ("completed", "incomplete")
    listing = r.output[0]
    assert listing.type == "mcp_list_tools" and len(listing.tools) == 121
    assert r.tools[0].defer_loading is True and r.tools[1].type == "tool_search"
    turns = httpx.get(f"{vllm_server}/v1/mcp/traces/{r.id}").json()["turns"]
    assert turns[0]["loaded_tools"] == ["tool_search"]
    assert turns[0]["prompt_tokens"] < 2048


def test_messages_with_a_deferred_toolset_runs_with_the_search_in_the_prompt(
    vllm_server: str, remote_mcp_server: str
) -> None:
    claude = anthropic.Anthropic(base_url=vllm_server, api_key="unused", max_retries=0, timeout=120)
    url = f"{remote_mcp_server}/many/mcp"
    m = claude.beta.messages.create(
        model="tiny",
        max_tokens=24,
        extra_body={"temperature": 0},
        messages=[{"role": "user", "content": "Add 2 and 3."}],
        mcp_servers=[{"type": "url", "url": url, "name": "many"}],
        tools=[
            {"type": "mcp_toolset", "mcp_server_name": "many", "default_config": {"defer_loading": True}},
            {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"},
        ],
        betas=BETA,
    )
    assert m.stop_reason in ("end_turn", "max_tokens", "tool_use")
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.beta.messages.create(
            model="tiny",
            max_tokens=24,
            messages=[{"role": "user", "content": "Add 2 and 3."}],
            mcp_servers=[{"type": "url", "url": url, "name": "many"}],
            tools=[{"type": "mcp_toolset", "mcp_server_name": "many"}],
            betas=BETA,
        )
    body = info.value.body
    assert isinstance(body, dict) and "of them the definitions of 121 tools" in body["error"]["message"]
