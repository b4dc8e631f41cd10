"""Tool types beside mcp tools, Codex's fields, and built-in servers named by URL or connector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import ResponseFunctionToolCall
from vllm.tool_parsers.utils import flat_namespace_tool_name

from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.responses.request import parse_request
from vllm_mcp_ext.responses.tool_kinds import NAMESPACE_SEPARATOR
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.types.request import ForcedTool

CODEX = Path(__file__).resolve().parents[1] / "e2e" / "requests" / "codex-0.169.0.json"
MCP = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
NAMESPACE = {
    "type": "namespace",
    "name": "agents",
    "description": "Sub-agents.",
    "tools": [
        {"type": "function", "name": "spawn", "description": "Start one.", "parameters": {"type": "object"}},
        {"type": "custom", "name": "raw"},
    ],
}


@pytest.fixture(scope="module")
def registry() -> ToolServerRegistry:
    return ToolServerRegistry((StdioServerSpec("calc", "python", ("calc.py",)),), Settings())


def parse(registry: ToolServerRegistry, context: ParsableContext | None = None, **body: Any):
    return parse_request({"model": "tiny", "input": "hi", **body}, registry, "tiny", context)


def test_namespace_functions_are_shown_by_their_flat_name_as_vllm_does(registry) -> None:
    request = parse(registry, tools=[MCP, NAMESPACE])
    assert [t["function"]["name"] for t in request.function_tools] == ["agents__spawn"]
    assert request.function_tools[0]["function"]["description"] == "Start one."
    assert request.namespaced == {"agents__spawn": ("agents", "spawn")}
    assert request.tools[1] == NAMESPACE  # echoed as sent
    assert flat_namespace_tool_name("agents", "spawn") == f"agents{NAMESPACE_SEPARATOR}spawn"


def test_a_namespace_call_is_reported_by_name_and_namespace(registry) -> None:
    request = parse(registry, tools=[MCP, NAMESPACE])
    stream = ResponseStream(request)
    index = stream.open_function_call("agents__spawn")
    item = stream.output[index]
    assert isinstance(item, ResponseFunctionToolCall)
    assert (item.name, item.namespace) == ("spawn", "agents")


def test_a_namespace_call_sent_back_is_the_flat_name_the_model_saw(registry) -> None:
    call = {
        "type": "function_call",
        "call_id": "c1",
        "name": "spawn",
        "namespace": "agents",
        "arguments": "{}",
    }
    output = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    context = ParsableContext()
    parse(registry, context, tools=[MCP, NAMESPACE], input=[{"role": "user", "content": "go"}, call, output])
    [_, assistant, tool] = context.messages
    assert assistant["tool_calls"][0]["function"]["name"] == "agents__spawn"
    assert tool["content"] == "ok"


def test_tool_choice_names_a_namespace_tool_by_its_own_name(registry) -> None:
    request = parse(registry, tools=[MCP, NAMESPACE], tool_choice={"type": "function", "name": "spawn"})
    assert request.tool_choice == ForcedTool("function", "agents__spawn")


@pytest.mark.parametrize(
    "hosted",
    [
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "image_generation"},
    ],
)
def test_hosted_tools_are_echoed_and_not_shown_to_the_model(registry, hosted: dict[str, Any]) -> None:
    request = parse(registry, tools=[MCP, hosted])
    assert request.function_tools == [] and request.tools[1] == hosted


def test_a_malformed_hosted_tool_is_a_400_naming_the_field(registry) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(registry, tools=[MCP, {"type": "file_search"}])
    assert info.value.param is not None and info.value.param.startswith("tools[1]")
    assert "MCP" not in info.value.message


def test_custom_tools_beside_mcp_are_a_400_that_says_why(registry) -> None:
    with pytest.raises(Unsupported) as info:
        parse(registry, tools=[MCP, {"type": "custom", "name": "patch"}])
    assert info.value.param == "tools[1].type" and "custom" in info.value.message


def test_codex_request_with_an_mcp_tool_parses_and_echoes_codex_fields(registry) -> None:
    codex = json.loads(CODEX.read_text())
    request = parse_request({**codex, "tools": [*codex["tools"], MCP]}, registry, "tiny")
    shown = [t["function"]["name"] for t in request.function_tools]
    assert "exec_command" in shown and "multi_agent_v1__spawn_agent" in shown
    assert not any("web_search" in name for name in shown)
    template = request
    assert template.store is False and template.reasoning == {"summary": "auto"}
    assert template.prompt_cache_key == codex["prompt_cache_key"]
    snapshot = ResponseStream(template).snapshot("in_progress")
    assert snapshot.reasoning is not None and snapshot.reasoning.summary == "auto"
    assert snapshot.prompt_cache_key == codex["prompt_cache_key"]


def test_mcp_tool_choice_without_label_means_the_one_mcp_tool(registry) -> None:
    request = parse(registry, tools=[MCP], tool_choice={"type": "mcp"})
    assert request.tool_choice == ForcedTool("mcp", None, "calc")
    assert request.shown_tool_choice == {"type": "mcp", "server_label": "calc"}
    assert ResponseStream(request).snapshot("in_progress").tool_choice.type == "mcp"  # validates
    remote = {"type": "mcp", "server_label": "other", "connector_id": "calc"}
    with pytest.raises(InvalidRequest) as info:
        parse(registry, tools=[MCP, remote], tool_choice={"type": "mcp"})
    assert info.value.param == "tool_choice.server_label"


@pytest.mark.parametrize(
    "reference",
    [{"connector_id": "calc"}, {"server_url": "tool-server://calc"}, {"server_url": "tool-server://calc/"}],
)
def test_a_configured_server_can_be_named_by_connector_or_url(registry, reference: dict[str, str]) -> None:
    request = parse(registry, tools=[{"type": "mcp", "server_label": "math", **reference}])
    [use] = request.servers
    assert use.label == "math" and use.source is registry.get("calc")
    shown = {
        k: v for k, v in reference.items() if k == "server_url"
    }  # OpenAI's connector_id type is a fixed list
    assert request.tools[0] == {"type": "mcp", "server_label": "math", **shown}
    snapshot = ResponseStream(request).snapshot("in_progress")  # the echo validates
    assert snapshot.tools[0].type == "mcp"


@pytest.mark.parametrize(
    ("reference", "param"),
    [
        ({"connector_id": "nope"}, "tools[0].connector_id"),
        ({"server_url": "tool-server://nope"}, "tools[0].server_url"),
    ],
)
def test_naming_an_unknown_configured_server_is_a_400(
    registry, reference: dict[str, str], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(registry, tools=[{"type": "mcp", "server_label": "math", **reference}])
    assert info.value.param == param and info.value.code == "unknown_server_label"
    assert "calc" in info.value.message


def test_openai_connectors_stay_openai_hosted_only(registry) -> None:
    with pytest.raises(Unsupported) as info:
        parse(registry, tools=[{"type": "mcp", "server_label": "d", "connector_id": "connector_dropbox"}])
    assert info.value.param == "tools[0].connector_id"


def test_reasoning_effort_reaches_the_chat_template_as_vllm_passes_it(registry) -> None:
    request = parse(registry, tools=[MCP], reasoning={"effort": "low", "summary": "auto"})
    assert request.reasoning_effort == "low"
    with pytest.raises(InvalidRequest) as info:
        parse(registry, tools=[MCP], reasoning={"effort": "enormous"})
    assert info.value.param == "reasoning.effort"
