"""A ``POST /v1/chat/completions`` body with ``mcp`` tools, as the Responses body the core runs.

The chat door has no loop of its own: `chat_request` turns the chat body into the body
`ResponsesService.prepare` takes (messages -> input items, chat tools -> Responses tools), so the
tool loop, approvals, limits and prefix reuse are the core's. What the client sends back from an
earlier completion (``message.mcp_calls``, ``message.mcp_approval_requests``, see
`chat.response`) becomes the ``mcp_call`` / ``mcp_approval_request`` items a Responses client
would replay; the answers to approval requests come in the top-level ``mcp_approval_responses``.

Errors the core raises name Responses fields (``input[3]``, ``max_output_tokens``);
`ChatRequest.renamed` gives them back the chat names (``messages[2]``, ``max_completion_tokens``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vllm_mcp_ext.errors import InvalidRequest, McpExtError, Unsupported
from vllm_mcp_ext.types import door_fields
from vllm_mcp_ext.types.content import flatten_text


@dataclass
class ChatRequest:
    """The translated request: the Responses body, and what only the chat answer needs."""

    body: dict[str, Any]  # for `ResponsesService.prepare`
    stream: bool = False
    include_usage: bool = False
    # input item index -> the chat path it came from ("messages[2]"), for error params
    origins: list[str] = field(default_factory=list)

    def renamed(self, exc: McpExtError) -> McpExtError:
        """``exc`` with its ``param`` (and message) naming the chat request's fields."""
        if exc.param is None:
            return exc
        param = _RENAMES.get(exc.param, exc.param)
        match = re.match(r"input\[(\d+)\]", param)
        if match and int(match.group(1)) < len(self.origins):
            param = self.origins[int(match.group(1))] + param[match.end() :]
        if param != exc.param:
            exc.message = exc.message.replace(exc.param, param)
            exc.param = param
        return exc


_RENAMES = {
    "max_output_tokens": "max_completion_tokens",
    "input": "messages",
    "text.format": "response_format",
}


def chat_request(body: dict[str, Any]) -> ChatRequest:
    """Translate ``body``; 400 for what cannot be translated (the core checks the rest)."""
    name = door_fields.CHAT.unserved(body)
    if name is not None:
        raise Unsupported(f"{name!r} is not supported with mcp tools", param=name)
    origins: list[str] = []
    items = _input(body.get("messages"), origins)
    items += _approval_answers(body.get("mcp_approval_responses"), origins)
    out: dict[str, Any] = {"model": body.get("model"), "input": items, "store": False}
    out["tools"] = [_tool(t, i) for i, t in enumerate(_list(body, "tools"))]
    if "tool_choice" in body:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    for chat_name, name in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("parallel_tool_calls", "parallel_tool_calls"),
        ("user", "user"),
        ("metadata", "metadata"),
        ("stream_interval", "stream_interval"),  # vLLM's: tokens per streamed delta
    ):
        if body.get(chat_name) is not None:
            out[name] = body[chat_name]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        out["max_output_tokens"] = limit
    if body.get("response_format") is not None:
        out["text"] = {"format": _text_format(body["response_format"])}
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    options = body.get("stream_options") or {}
    return ChatRequest(
        body=out,
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        origins=origins,
    )


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{key!r} must be an array", param=key)
    return value


# -- messages -> input items ------------------------------------------------------------------


def _input(messages: Any, origins: list[str]) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    items: list[dict[str, Any]] = []
    approval_ids: set[str] = set()
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest("each message must be an object", param=param)
        for item in _items(message, param, approval_ids):
            items.append(item)
            origins.append(param)
    return items


def _items(message: dict[str, Any], param: str, approval_ids: set[str]) -> list[dict[str, Any]]:
    role = message.get("role")
    if role in ("system", "developer", "user"):
        return [{"type": "message", "role": role, "content": flatten_text(message.get("content"), param)}]
    if role == "tool":
        output = flatten_text(message.get("content"), param)
        return [
            {"type": "function_call_output", "call_id": str(message.get("tool_call_id")), "output": output}
        ]
    if role == "assistant":
        return _assistant(message, param, approval_ids)
    raise InvalidRequest(f"unsupported role {role!r}", param=f"{param}.role")


def _assistant(message: dict[str, Any], param: str, approval_ids: set[str]) -> list[dict[str, Any]]:
    """An earlier completion's message, as the Responses output items it was made from."""
    items: list[dict[str, Any]] = []
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        items.append(
            {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": reasoning}]}
        )
    for j, call in enumerate(message.get("mcp_calls") or []):
        items += _mcp_call(call, f"{param}.mcp_calls[{j}]", approval_ids)
    for j, request in enumerate(message.get("mcp_approval_requests") or []):
        items.append(_approval_request(request, f"{param}.mcp_approval_requests[{j}]"))
        approval_ids.add(items[-1]["id"])
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if content or not (calls or items):
        items.append({"type": "message", "role": "assistant", "content": flatten_text(content or "", param)})
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest("a tool call needs a function name", param=f"{param}.tool_calls[{j}]")
        items.append(
            {
                "type": "function_call",
                "call_id": str(call.get("id")),
                "name": function["name"],
                "arguments": function.get("arguments") or "{}",
            }
        )
    return items


def _mcp_call(call: Any, param: str, approval_ids: set[str]) -> list[dict[str, Any]]:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise InvalidRequest("an mcp call needs its 'name' and 'server_label'", param=param)
    item = {"type": "mcp_call", **{k: call.get(k) for k in _MCP_CALL_FIELDS}}
    approved = call.get("approval_request_id")
    if approved in approval_ids:  # it ran, so it was approved back then
        return [{"type": "mcp_approval_response", "approval_request_id": approved, "approve": True}, item]
    return [item]


_MCP_CALL_FIELDS = ("id", "server_label", "name", "arguments", "output", "error", "approval_request_id")


def _approval_request(request: Any, param: str) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("id"), str):
        raise InvalidRequest("an approval request needs its 'id'", param=param)
    fields = ("id", "server_label", "name", "arguments")
    return {"type": "mcp_approval_request", **{k: request.get(k) for k in fields}}


def _approval_answers(raw: Any, origins: list[str]) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest("'mcp_approval_responses' must be an array", param="mcp_approval_responses")
    items = []
    for i, answer in enumerate(raw):
        if not isinstance(answer, dict):
            raise InvalidRequest(
                "each approval response must be an object", param=f"mcp_approval_responses[{i}]"
            )
        fields = {k: answer[k] for k in ("approval_request_id", "approve", "reason") if k in answer}
        items.append({"type": "mcp_approval_response", **fields})
        origins.append(f"mcp_approval_responses[{i}]")
    return items


# -- tools --------------------------------------------------------------------------------------


def _tool(raw: Any, i: int) -> dict[str, Any]:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("mcp", "tool_search"):  # tool_search: deferred mcp tools are found in the loop
        return raw
    if kind == "function":
        function = raw.get("function")
        if not isinstance(function, dict):
            raise InvalidRequest("a function tool needs a 'function' object", param=f"tools[{i}].function")
        return {"type": "function", **function}
    raise InvalidRequest(
        f"tool type {kind!r} is not supported; use 'function', 'mcp' or 'tool_search'",
        param=f"tools[{i}].type",
    )


def _tool_choice(raw: Any) -> Any:
    if isinstance(raw, dict) and raw.get("type") == "function":
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        return {"type": "function", "name": name}
    return raw  # "auto" / "none" / "required" / {"type": "mcp", ...}: the core checks them


def _text_format(raw: Any) -> dict[str, Any]:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema" and isinstance(raw.get("json_schema"), dict):
        return {"type": "json_schema", **raw["json_schema"]}
    raise InvalidRequest("response_format must be text, json_object or json_schema", param="response_format")
