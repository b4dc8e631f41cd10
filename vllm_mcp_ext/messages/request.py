"""An Anthropic ``POST /v1/messages`` body with the MCP connector, as the Responses body the core runs.

The connector (beta ``mcp-client-2025-11-20``): ``mcp_servers`` entries ``{"type": "url", "url",
"name", "authorization_token"}`` say where servers are; each is enabled by one ``tools`` entry
``{"type": "mcp_toolset", "mcp_server_name", "default_config", "configs"}``. Each pair becomes one
Responses ``mcp`` tool (``require_approval: "never"``: the connector has no approvals):

- a remote URL -> ``server_url`` + ``authorization``: the core's URL policy and secret handling;
- ``tool-server://<label>`` as the url, or an ``mcp_toolset`` whose ``mcp_server_name`` is no
  ``mcp_servers`` entry -> the server configured with ``--tool-server`` under that label;
- ``default_config.enabled: false`` + ``configs: {name: {"enabled": true}}`` -> ``allowed_tools``
  (an allowlist); ``configs: {name: {"enabled": false}}`` -> ``denied_tools`` (a denylist).

Custom tools (``{"name", "description", "input_schema"}``) are function tools the client runs.
Earlier ``mcp_tool_use`` + ``mcp_tool_result`` blocks sent back become ``mcp_call`` items, so a
conversation continues the way the Responses core replays one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.types import door_fields

_TOOLSET_KEYS = frozenset({"type", "mcp_server_name", "default_config", "configs", "cache_control"})
_SERVER_KEYS = frozenset({"type", "url", "name", "authorization_token"})


@dataclass
class MessagesRequest:
    body: dict[str, Any]  # for `ResponsesService.prepare`
    stream: bool = False


def messages_request(body: dict[str, Any]) -> MessagesRequest:
    """Translate ``body``; 400 for what cannot be translated (the core checks the rest)."""
    name = door_fields.MESSAGES.unserved(body)
    if name is not None:
        raise Unsupported(f"{name!r} is not supported with the MCP connector", param=name)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: a positive integer is required", param="max_tokens")
    servers = _servers(body.get("mcp_servers"))
    tools, custom = _tools(body.get("tools"), servers)
    out: dict[str, Any] = {
        "model": body.get("model"),
        "input": _input(body.get("messages")),
        "tools": tools,
        "store": False,
        "max_output_tokens": max_tokens,
    }
    system = body.get("system")
    if system is not None:
        out["instructions"] = _text(system, "system")
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    user = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if user is not None:
        out["user"] = user
    if body.get("tool_choice") is not None:
        out.update(_tool_choice(body["tool_choice"], custom))
    return MessagesRequest(out, stream=body.get("stream") is True)


# -- servers and toolsets -----------------------------------------------------------------------


def _servers(raw: Any) -> dict[str, tuple[int, dict[str, Any]]]:
    """``mcp_servers`` by name, each with its index."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise InvalidRequest("mcp_servers: must be an array", param="mcp_servers")
    servers: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, server in enumerate(raw):
        param = f"mcp_servers.{i}"
        if not isinstance(server, dict) or server.get("type") != "url":
            raise InvalidRequest(
                f'{param}: an MCP server must be {{"type": "url", "url", "name"}}', param=param
            )
        extra = set(server) - _SERVER_KEYS
        if extra:
            raise InvalidRequest(f"{param}.{sorted(extra)[0]}: Extra inputs are not permitted", param=param)
        name, url = server.get("name"), server.get("url")
        if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
            raise InvalidRequest(f"{param}: 'name' and 'url' are required strings", param=param)
        if name in servers:
            raise InvalidRequest(
                f"{param}.name: MCP server name {name!r} appears twice", param=f"{param}.name"
            )
        servers[name] = (i, server)
    return servers


def _tools(raw: Any, servers: dict[str, tuple[int, dict[str, Any]]]) -> tuple[list[dict[str, Any]], set[str]]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidRequest("tools: must be an array", param="tools")
    tools: list[dict[str, Any]] = []
    custom: set[str] = set()
    used: set[str] = set()
    for i, tool in enumerate(raw):
        param = f"tools.{i}"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{param}: each tool must be an object", param=param)
        kind = tool.get("type")
        if kind == "mcp_toolset":
            name = tool.get("mcp_server_name")
            if name in used:
                raise InvalidRequest(
                    f"{param}.mcp_server_name: MCP server {name!r} is referenced by two toolsets", param=param
                )
            tools.append(_toolset(tool, param, servers))
            used.add(str(name))
        elif kind in (None, "custom"):
            tools.append(_custom(tool, param))
            custom.add(tool["name"])
        else:
            raise Unsupported(
                f"{param}.type: tool type {kind!r} is not supported here", param=f"{param}.type"
            )
    for name, (i, _) in servers.items():
        if name not in used:
            raise InvalidRequest(
                f"mcp_servers.{i}: MCP server {name!r} is not referenced by an mcp_toolset in tools",
                param=f"mcp_servers.{i}",
            )
    return tools, custom


def _toolset(
    tool: dict[str, Any], param: str, servers: dict[str, tuple[int, dict[str, Any]]]
) -> dict[str, Any]:
    extra = set(tool) - _TOOLSET_KEYS
    if extra:
        raise InvalidRequest(f"{param}.{sorted(extra)[0]}: not supported in an mcp_toolset", param=param)
    name = tool.get("mcp_server_name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(
            f"{param}.mcp_server_name: a string is required", param=f"{param}.mcp_server_name"
        )
    mcp: dict[str, Any] = {"type": "mcp", "server_label": name, "require_approval": "never"}
    if name in servers:
        server = servers[name][1]
        mcp["server_url"] = server["url"]
        if server.get("authorization_token") is not None:
            mcp["authorization"] = server["authorization_token"]
    default = _enabled(tool.get("default_config"), f"{param}.default_config")
    configs = tool.get("configs") or {}
    if not isinstance(configs, dict):
        raise InvalidRequest(
            f"{param}.configs: must be an object keyed by tool name", param=f"{param}.configs"
        )
    switched = {k: _enabled(v, f"{param}.configs.{k}") for k, v in configs.items()}
    if default is False:
        mcp["allowed_tools"] = [k for k, on in switched.items() if on is True]
    else:
        denied = [k for k, on in switched.items() if on is False]
        if denied:
            mcp["denied_tools"] = denied
    return mcp


def _enabled(raw: Any, param: str) -> bool | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"enabled", "defer_loading"}:
        raise InvalidRequest(f"{param}: only 'enabled' and 'defer_loading' can be configured", param=param)
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidRequest(f"{param}.enabled: a boolean is required", param=f"{param}.enabled")
    return enabled


def _custom(tool: dict[str, Any], param: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{param}.name: a string is required", param=f"{param}.name")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{param}.input_schema: an object is required", param=f"{param}.input_schema")
    return {
        "type": "function",
        "name": name,
        "description": tool.get("description") or "",
        "parameters": schema,
    }


def _tool_choice(raw: Any, custom: set[str]) -> dict[str, Any]:
    kind = raw.get("type") if isinstance(raw, dict) else None
    out: dict[str, Any] = {}
    if isinstance(raw, dict) and raw.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    if kind in ("auto", "none"):
        out["tool_choice"] = kind
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "tool" and raw.get("name") in custom:
        out["tool_choice"] = {"type": "function", "name": raw["name"]}
    else:
        raise InvalidRequest(
            'tool_choice: must be auto, any, none, or {"type": "tool"} naming a custom tool',
            param="tool_choice",
        )
    return out


# -- messages -> input items --------------------------------------------------------------------


def _input(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: a non-empty array is required", param="messages")
    items: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages.{i}"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{param}.role: must be 'user' or 'assistant'", param=f"{param}.role")
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise InvalidRequest(
                f"{param}.content: a string or an array is required", param=f"{param}.content"
            )
        items += _blocks(role, blocks, param)
    return items


def _blocks(role: str, blocks: list[Any], param: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    results = {
        b.get("tool_use_id"): b for b in blocks if isinstance(b, dict) and b.get("type") == "mcp_tool_result"
    }
    for j, block in enumerate(blocks):
        where = f"{param}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            last = items[-1] if items else None
            if last is not None and last["type"] == "message":
                last["content"] += str(block.get("text", ""))  # one turn's text is one message
            else:
                items.append({"type": "message", "role": role, "content": str(block.get("text", ""))})
        elif kind == "thinking" and role == "assistant":
            text = str(block.get("thinking", ""))
            items.append(
                {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": text}]}
            )
        elif kind == "tool_use" and role == "assistant":
            items.append(
                {
                    "type": "function_call",
                    "call_id": str(block.get("id")),
                    "name": str(block.get("name")),
                    "arguments": json.dumps(block.get("input") or {}),
                }
            )
        elif kind == "mcp_tool_use" and role == "assistant":
            items.append(_mcp_call(block, results.get(block.get("id")), where))
        elif kind == "mcp_tool_result" and role == "assistant":
            continue  # taken with its mcp_tool_use
        elif kind == "tool_result" and role == "user":
            output = _text(block.get("content") or "", f"{where}.content")
            if block.get("is_error"):
                output = f"Error: {output}"
            items.append(
                {"type": "function_call_output", "call_id": str(block.get("tool_use_id")), "output": output}
            )
        elif kind in ("thinking", "redacted_thinking") and role == "user":
            raise InvalidRequest(
                f"{where}.type: {kind!r} blocks belong to assistant turns", param=f"{where}.type"
            )
        else:
            raise Unsupported(
                f"{where}.type: content block {kind!r} is not supported here", param=f"{where}.type"
            )
    return items


def _mcp_call(use: dict[str, Any], result: dict[str, Any] | None, where: str) -> dict[str, Any]:
    if not isinstance(use.get("id"), str) or not isinstance(use.get("name"), str):
        raise InvalidRequest(f"{where}: an mcp_tool_use needs its 'id' and 'name'", param=where)
    item: dict[str, Any] = {
        "type": "mcp_call",
        "id": use["id"],
        "server_label": str(use.get("server_name", "")),
        "name": use["name"],
        "arguments": json.dumps(use.get("input") or {}),
    }
    if result is not None:
        text = _text(result.get("content") or "", where)
        item["error" if result.get("is_error") else "output"] = (
            {"message": text} if result.get("is_error") else text
        )
    return item


def _text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{param}: a string or an array of text blocks is required", param=param)
    texts = []
    for j, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            kind = block.get("type") if isinstance(block, dict) else None
            raise Unsupported(
                f"{param}.{j}.type: content block {kind!r} is not supported here", param=f"{param}.{j}"
            )
        texts.append(str(block.get("text", "")))
    return "".join(texts)
