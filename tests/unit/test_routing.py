"""The routing rule: a request stock vLLM answers goes to stock unless the plugin serves it as well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import Unsupported
from vllm_mcp_ext.responses.request import parse_request
from vllm_mcp_ext.servers import ToolServerRegistry

REQUESTS = Path(__file__).resolve().parents[1] / "e2e" / "requests"
FUNCTION = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
MCP = {"type": "mcp", "server_label": "calc"}


def route(body: dict[str, Any], *, harmony: bool = False, ours: bool = False) -> str:
    return choose_route({"model": "tiny", **body}, harmony=harmony, previous_is_ours=ours).handler


SERVED = [
    {"input": "hi"},
    {"input": "hi", "stream": True, "store": False, "background": False},
    {"input": "hi", "tools": [FUNCTION], "tool_choice": {"type": "function", "name": "get_weather"}},
    {"input": "hi", "include": [], "truncation": "disabled", "service_tier": "auto", "top_logprobs": 0},
    {
        "input": "hi",
        "metadata": {"a": "b"},
        "user": "u",
        "temperature": 0,
        "top_p": 1,
        "max_output_tokens": 9,
    },
    {"input": "hi", "text": {"format": {"type": "json_object"}}},
    {"input": "hi", "reasoning": None, "prompt": None},
    {
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "c", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "sunny"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]
    },
]

NOT_SERVED = [
    {"input": "hi", "tools": [{"type": "namespace", "name": "ns", "tools": [FUNCTION]}]},
    {"input": "hi", "tools": [{"type": "web_search"}]},
    {"input": "hi", "tools": [{"type": "custom", "name": "patch"}]},
    {"input": "hi", "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
    {"input": "hi", "reasoning": {"effort": "low"}},
    {"input": "hi", "include": ["message.output_text.logprobs"], "top_logprobs": 2},
    {"input": "hi", "prompt_cache_key": "k"},
    {"input": "hi", "client_metadata": {"a": "b"}},
    {"input": "hi", "conversation": "conv_1"},
    {"input": "hi", "prompt": {"id": "pmpt_1"}},
    {"input": "hi", "truncation": "auto"},
    {"input": "hi", "text": {"format": {"type": "text"}, "verbosity": "low"}},
    {"input": "hi", "tools": [FUNCTION], "text": {"format": {"type": "json_object"}}},
    {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:..."}]}]},
    {"input": [{"type": "item_reference", "id": "msg_1"}]},
    {"input": [{"type": "function_call", "call_id": "c", "name": "x", "namespace": "ns", "arguments": "{}"}]},
]


@pytest.mark.parametrize("body", SERVED)
def test_requests_the_loop_serves_as_well_as_stock_stay_with_the_plugin(body: dict[str, Any]) -> None:
    assert route(body) == "plugin"


@pytest.mark.parametrize("body", NOT_SERVED)
def test_other_requests_without_mcp_tools_go_to_stock(body: dict[str, Any]) -> None:
    assert route(body) == "stock"


@pytest.mark.parametrize("body", NOT_SERVED)
def test_mcp_tools_keep_any_request_with_the_plugin(body: dict[str, Any]) -> None:
    assert route({**body, "tools": [*body.get("tools", []), MCP]}) == "plugin"


def test_previous_response_id_goes_where_the_response_lives() -> None:
    assert route({"input": "hi", "previous_response_id": "resp_1"}, ours=True) == "plugin"
    assert route({"input": "hi", "previous_response_id": "resp_1"}, ours=False) == "stock"
    # a continuation of ours is served by the loop even with shapes it would otherwise hand on
    assert route({"input": "hi", "previous_response_id": "resp_1", "reasoning": {}}, ours=True) == "plugin"


def test_a_compaction_item_in_the_input_is_the_plugins_to_read() -> None:
    compacted = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "compaction", "id": "cmp_1", "encrypted_content": "e30="},
        {"role": "user", "content": "and then?"},
    ]
    assert route({"input": compacted[1:2]}) == "plugin"
    assert route({"input": compacted}, harmony=True) == "plugin"
    assert route({"input": compacted, "previous_response_id": "resp_1"}, ours=False) == "plugin"
    assert route({"input": compacted[::2]}) == "plugin"  # plain messages: served as well as stock
    assert route({"input": compacted[::2]}, harmony=True) == "stock"


def test_gpt_oss_plain_requests_go_to_stock_for_harmony() -> None:
    assert route({"input": "hi"}, harmony=True) == "stock"
    assert route({"input": "hi", "tools": [MCP]}, harmony=True) == "plugin"
    assert route({"input": "hi", "previous_response_id": "resp_1"}, harmony=True, ours=True) == "plugin"


def test_harmony_demo_tools_stay_on_stock_unless_the_plugin_has_the_server() -> None:
    demo = {"type": "mcp", "server_label": "code_interpreter"}
    assert route({"input": "hi", "tools": [demo]}, harmony=True) == "stock"
    assert route({"input": "hi", "tools": [demo, MCP]}, harmony=True) == "plugin"
    assert (
        route({"input": "hi", "tools": [{**demo, "server_url": "https://x.example/mcp"}]}, harmony=True)
        == "plugin"
    )
    ours = choose_route(
        {"model": "m", "input": "hi", "tools": [demo]},
        harmony=True,
        previous_is_ours=False,
        own_labels=frozenset({"code_interpreter"}),
    )
    assert ours.handler == "plugin"
    assert route({"input": "hi", "tools": [demo]}, harmony=False) == "plugin"


def test_recorded_codex_request_goes_to_stock() -> None:
    codex = json.loads((REQUESTS / "codex-0.169.0.json").read_text())
    assert route(codex) == "stock"


def test_recorded_agents_sdk_requests_stay_with_the_plugin() -> None:
    for body in json.loads((REQUESTS / "openai-agents-0.24.0.json").read_text()):
        assert route(body) == "plugin"


@pytest.mark.parametrize("body", SERVED)
def test_what_the_plugin_keeps_it_does_not_refuse_as_unsupported(body: dict[str, Any]) -> None:
    try:
        parse_request({"model": "tiny", **body}, ToolServerRegistry((), Settings()), "tiny")
    except Unsupported as exc:  # pragma: no cover - the failure message
        pytest.fail(f"routed to the plugin but refused: {exc.message}")
