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
from vllm_mcp_ext.loop.context_edits import (
    DEFAULT_KEEP_THINKING_TURNS,
    DEFAULT_KEEP_TOOL_USES,
    DEFAULT_TRIGGER,
    ClearThinking,
    ClearToolUses,
    ContextEdits,
)
from vllm_mcp_ext.types import door_fields

_TOOL_SEARCH_TYPES = frozenset(
    {
        "tool_search_tool_bm25_20251119",
        "tool_search_tool_bm25",
        "tool_search_tool_regex_20251119",
        "tool_search_tool_regex",
    }
)
_TOOLSET_KEYS = frozenset({"type", "mcp_server_name", "default_config", "configs", "cache_control"})
_SERVER_KEYS = frozenset({"type", "url", "name", "authorization_token"})


@dataclass
class MessagesRequest:
    body: dict[str, Any]  # for `ResponsesService.prepare`
    stream: bool = False
    edits: ContextEdits | None = None  # `context_management`, for the loop (loop/context_edits.py)


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
        out.update(_tool_choice(body["tool_choice"], custom, body["tools"] or []))
    edits = _context_edits(body.get("context_management"))
    return MessagesRequest(out, stream=body.get("stream") is True, edits=edits)


# -- context management -------------------------------------------------------------------------


def _context_edits(raw: Any) -> ContextEdits | None:
    """Anthropic's ``context_management.edits``: tool-use and thinking clearing; a 400 for the
    others (``compact_20260112``: compaction is not implemented)."""
    if raw is None:
        return None
    edits = raw.get("edits") if isinstance(raw, dict) else None
    if not isinstance(edits, list):
        raise InvalidRequest("context_management.edits: an array is required", param="context_management")
    tool_uses: ClearToolUses | None = None
    thinking: ClearThinking | None = None
    for i, edit in enumerate(edits):
        param = f"context_management.edits.{i}"
        kind = edit.get("type") if isinstance(edit, dict) else None
        if kind == "clear_tool_uses_20250919":
            tool_uses = _clear_tool_uses(edit, param)
        elif kind == "clear_thinking_20251015":
            thinking = ClearThinking(_keep_thinking(edit.get("keep"), f"{param}.keep"))
        else:
            raise Unsupported(
                f"{param}.type: context edit {kind!r} is not supported (clear_tool_uses_20250919 and "
                "clear_thinking_20251015 are)",
                param=f"{param}.type",
            )
    return ContextEdits(tool_uses, thinking)


def _clear_tool_uses(edit: dict[str, Any], param: str) -> ClearToolUses:
    trigger = _counted(edit.get("trigger"), "input_tokens", DEFAULT_TRIGGER, f"{param}.trigger")
    keep = _counted(edit.get("keep"), "tool_uses", DEFAULT_KEEP_TOOL_USES, f"{param}.keep")
    least = _counted(edit.get("clear_at_least"), "input_tokens", 0, f"{param}.clear_at_least")
    exclude = edit.get("exclude_tools") or []
    inputs = edit.get("clear_tool_inputs") or False
    if not isinstance(exclude, list) or not all(isinstance(n, str) for n in exclude):
        raise InvalidRequest(f"{param}.exclude_tools: an array of tool names is required", param=param)
    if not isinstance(inputs, bool) and not (
        isinstance(inputs, list) and all(isinstance(n, str) for n in inputs)
    ):
        raise InvalidRequest(f"{param}.clear_tool_inputs: a boolean or tool names are required", param=param)
    clear_inputs: bool | frozenset[str] = inputs if isinstance(inputs, bool) else frozenset(inputs)
    return ClearToolUses(trigger, keep, least, frozenset(exclude), clear_inputs)


def _counted(raw: Any, unit: str, default: int, param: str) -> int:
    """``{"type": unit, "value": n}``; a ``tool_uses`` trigger is not supported (a 400)."""
    if raw is None:
        return default
    value = raw.get("value") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("type") != unit:
        raise Unsupported(f'{param}: only {{"type": "{unit}", "value"}} is supported', param=param)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{param}.value: a non-negative integer is required", param=param)
    return value


def _keep_thinking(raw: Any, param: str) -> int | None:
    if raw is None:
        return DEFAULT_KEEP_THINKING_TURNS
    if raw == "all" or (isinstance(raw, dict) and raw.get("type") == "all"):
        return None
    return _counted(raw, "thinking_turns", DEFAULT_KEEP_THINKING_TURNS, param)


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
        elif kind in _TOOL_SEARCH_TYPES:
            # Anthropic's tool-search tools: the loop's search (BM25 for the regex variant too)
            tools.append({"type": "tool_search"})
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
    # The connector cannot ask the user: a call the operator's rules want approved is refused.
    mcp: dict[str, Any] = {
        "type": "mcp",
        "server_label": name,
        "require_approval": "never",
        "approvals": "unavailable",
    }
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
    if _deferred(tool, configs, param):
        mcp["defer_loading"] = True
    switched = {k: _enabled(v, f"{param}.configs.{k}") for k, v in configs.items()}
    if default is False:
        mcp["allowed_tools"] = [k for k, on in switched.items() if on is True]
    else:
        denied = [k for k, on in switched.items() if on is False]
        if denied:
            mcp["denied_tools"] = denied
    return mcp


def _deferred(tool: dict[str, Any], configs: dict[str, Any], param: str) -> bool:
    """``default_config.defer_loading``: the server's tools wait for a tool search. A tool's own
    ``defer_loading`` that differs from it is refused (deferral is per server here)."""
    default = (tool.get("default_config") or {}).get("defer_loading") is True
    for name, config in configs.items():
        own = config.get("defer_loading") if isinstance(config, dict) else None
        if own is not None and own is not default:
            raise Unsupported(
                f"{param}.configs.{name}.defer_loading: tools are deferred per server here; set "
                "defer_loading in default_config only",
                param=f"{param}.configs",
            )
    return default


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


def _tool_choice(raw: Any, custom: set[str], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Anthropic's tool_choice; ``tools`` the request's (validated) tools."""
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
    elif kind == "tool" and isinstance(raw.get("name"), str) and (label := _toolset_of(raw["name"], tools)):
        # an MCP connector tool: the core checks the server has it (a 400 naming its tools if not)
        out["tool_choice"] = {"type": "mcp", "server_label": label, "name": raw["name"]}
    else:
        raise InvalidRequest(
            'tool_choice: must be auto, any, none, or {"type": "tool"} naming a custom tool or a '
            "tool of an mcp_toolset (with several toolsets, one whose configs name it)",
            param="tool_choice",
        )
    return out


def _toolset_of(name: str, tools: list[dict[str, Any]]) -> str | None:
    """The server whose toolset a forced tool belongs to: the only toolset, or the one whose
    ``configs`` name the tool (the servers' tool lists are not known here)."""
    toolsets = [t for t in tools if t.get("type") == "mcp_toolset"]
    if len(toolsets) == 1:
        return str(toolsets[0]["mcp_server_name"])
    named = [t for t in toolsets if name in (t.get("configs") or {})]
    return str(named[0]["mcp_server_name"]) if len(named) == 1 else None


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
        elif kind in ("server_tool_use", "tool_search_tool_result") and role == "assistant":
            continue  # an earlier tool search: the calls it led to carry on without it
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
