"""Validate a ``POST /v1/responses`` body into a `LoopRequest`, or raise `InvalidRequest`."""

from __future__ import annotations

from typing import Any

from openai.types.responses.tool import Mcp
from pydantic import TypeAdapter, ValidationError

from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.events import ResponseTemplate
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.loop.request import ForcedTool, LoopRequest, McpServerUse, ToolChoice
from vllm_mcp_ext.remote import RemoteMcp, RemoteSource
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.source import ToolSource

_MCP = TypeAdapter(Mcp)
_UNSUPPORTED_FIELDS = ("previous_response_id", "background", "conversation", "prompt")


def has_mcp_tools(body: dict[str, Any]) -> bool:
    tools = body.get("tools")
    return isinstance(tools, list) and any(isinstance(t, dict) and t.get("type") == "mcp" for t in tools)


def parse_request(
    body: dict[str, Any], registry: ToolServerRegistry, model: str, *, remote: RemoteMcp | None = None
) -> LoopRequest:
    for name in _UNSUPPORTED_FIELDS:
        if body.get(name):
            raise Unsupported(f"{name!r} is not supported with MCP tools yet", param=name)
    servers, functions, echo = _tools(body.get("tools") or [], registry, remote)
    template = ResponseTemplate(
        id=new_id("resp"),
        model=_string(body, "model") or model,
        tools=echo,
        tool_choice=body.get("tool_choice", "auto"),
        instructions=_string(body, "instructions"),
        metadata=body.get("metadata") or {},
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_output_tokens=_count(body, "max_output_tokens"),
        max_tool_calls=_count(body, "max_tool_calls"),
        parallel_tool_calls=body.get("parallel_tool_calls", True) is not False,
        store=body.get("store", True) is not False,
        user=_string(body, "user"),
    )
    return LoopRequest(
        template=template,
        messages=_messages(template.instructions, body.get("input")),
        servers=servers,
        function_tools=functions,
        tool_choice=_tool_choice(body.get("tool_choice", "auto"), servers),
        max_output_tokens=template.max_output_tokens,
        max_tool_calls=template.max_tool_calls,
        temperature=template.temperature,
        top_p=template.top_p,
        parallel_tool_calls=template.parallel_tool_calls,
    )


def _tools(
    tools: Any, registry: ToolServerRegistry, remote: RemoteMcp | None = None
) -> tuple[list[McpServerUse], list[dict[str, Any]], list[Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    servers: list[McpServerUse] = []
    functions: list[dict[str, Any]] = []
    echo: list[Any] = []
    for i, raw in enumerate(tools):
        param = f"tools[{i}]"
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind == "mcp":
            tool, source = _mcp_tool(raw, param, registry, remote)
            if any(s.label == tool.server_label for s in servers):
                raise InvalidRequest(
                    f"server_label {tool.server_label!r} appears twice", param=f"{param}.server_label"
                )
            servers.append(McpServerUse(tool.server_label, source, tool.allowed_tools))
            shown = tool.model_dump(exclude_none=True, exclude={"headers", "authorization"})
            if remote is not None and tool.server_url:
                shown["server_url"] = remote.echo_url(tool.server_url)  # like OpenAI: no path
            echo.append(shown)
        elif kind == "function":
            functions.append(_function_tool(raw, param))
            echo.append(raw)
        else:
            raise Unsupported(f"tool type {kind!r} is not supported with MCP tools", param=f"{param}.type")
    if remote is not None:
        remote.check_count(sum(isinstance(s.source, RemoteSource) for s in servers))
    return servers, functions, echo


def _mcp_tool(
    raw: dict[str, Any], param: str, registry: ToolServerRegistry, remote: RemoteMcp | None = None
) -> tuple[Mcp, ToolSource]:
    try:
        tool = _MCP.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{param}.{where}: {err['msg']}", param=f"{param}.{where}") from None
    for field in ("connector_id", "tunnel_id"):
        if getattr(tool, field, None):
            raise Unsupported(
                f"{field!r} is OpenAI-hosted only: use server_url, or name a server configured "
                "with --tool-server by its server_label",
                param=f"{param}.{field}",
            )
    if tool.require_approval != "never":
        raise Unsupported(
            'approvals are not supported yet: set require_approval to "never" '
            f"(got {tool.require_approval!r}; an absent value means approval is required)",
            param=f"{param}.require_approval",
        )
    if tool.server_url:
        if remote is None:
            raise Unsupported(
                "remote MCP servers (server_url) are not available", param=f"{param}.server_url"
            )
        remote_source = remote.source(
            tool.server_label, tool.server_url, tool.headers, tool.authorization, raw.get("transport"), param
        )
        return tool, remote_source
    source = registry.get(tool.server_label)
    if source is None:
        configured = ", ".join(registry.labels) or "none"
        raise InvalidRequest(
            f"unknown server_label {tool.server_label!r}; configured MCP servers: {configured}",
            param=f"{param}.server_label",
            code="unknown_server_label",
        )
    return tool, source


def _function_tool(raw: dict[str, Any], param: str) -> dict[str, Any]:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("a function tool needs a 'name'", param=f"{param}.name")
    function: dict[str, Any] = {"name": name, "description": raw.get("description") or ""}
    function["parameters"] = raw.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(raw: Any, servers: list[McpServerUse]) -> ToolChoice:
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "mcp":
        label = raw.get("server_label")
        if not any(s.label == label for s in servers):
            raise InvalidRequest(
                f"tool_choice names server_label {label!r}, which is not among the request's mcp tools",
                param="tool_choice.server_label",
            )
        return ForcedTool("mcp", raw.get("name"), label)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return ForcedTool("function", raw["name"])
    raise InvalidRequest(
        "tool_choice must be 'auto', 'none', 'required', {\"type\": \"mcp\", \"server_label\", "
        '"name"} or {"type": "function", "name"}',
        param="tool_choice",
    )


def _messages(instructions: str | None, raw: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
        return messages
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty array of items", param="input")
    for i, item in enumerate(raw):
        _append_item(messages, item, f"input[{i}]")
    return messages


def _append_item(messages: list[dict[str, Any]], item: Any, param: str) -> None:
    if not isinstance(item, dict):
        raise InvalidRequest("each input item must be an object", param=param)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise InvalidRequest(f"unsupported role {role!r}", param=f"{param}.role")
        messages.append({"role": "system" if role == "developer" else role, "content": _text(item, param)})
    elif kind in ("function_call", "mcp_call"):
        call_id = item.get("call_id") or item.get("id") or new_id("call")
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        if kind == "mcp_call":
            output = item.get("output") or _error_text(item.get("error"))
            messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
    elif kind == "function_call_output":
        output = item.get("output")
        if not isinstance(output, str):
            output = _text({"content": output}, param)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
    elif kind in ("mcp_list_tools", "reasoning"):
        return  # the tools are listed again for this request; earlier reasoning is not replayed
    else:
        raise Unsupported(f"input item type {kind!r} is not supported", param=f"{param}.type")


def _text(item: dict[str, Any], param: str) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or an array", param=f"{param}.content")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "text"):
            kind = part.get("type") if isinstance(part, dict) else None
            raise Unsupported(f"content part type {kind!r} is not supported", param=f"{param}.content[{j}]")
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"Error: {error.get('message') or error.get('content') or error}"
    return "Error: the call failed"


def _string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{key!r} must be a string", param=key)
    return value


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidRequest(f"{key!r} must be a number", param=key)
    return value


def _count(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest(f"{key!r} must be a positive integer", param=key)
    return value
