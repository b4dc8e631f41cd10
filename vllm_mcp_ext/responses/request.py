"""A ``POST /v1/responses`` body, validated once into a `ResponsesRequest`, or a 400.

Everything a client can get wrong is found here, before the response starts: unknown or
malformed fields, tools, ``tool_choice``, ``text.format`` and the ``input`` items, which are read
(once) into the response's `ParsableContext`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from openai.types.shared.reasoning import Reasoning
from pydantic import ValidationError

from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.events import elicitation, progress
from vllm_mcp_ext.events.ids import new_id
from vllm_mcp_ext.events.items import input_item
from vllm_mcp_ext.loop.context import ParsableContext
from vllm_mcp_ext.responses.engine_options import engine_options, refuse_unhonoured
from vllm_mcp_ext.responses.sources import GatewayResolver, mcp_source
from vllm_mcp_ext.responses.tool_kinds import OtherTools, flat_call_name, resolve_function_choice
from vllm_mcp_ext.servers import ServerConnection, ToolServerRegistry
from vllm_mcp_ext.servers.remote import RemoteMcp, RemoteSource
from vllm_mcp_ext.types import door_fields
from vllm_mcp_ext.types.request import ApprovalPolicy, ForcedTool, McpServerUse, ResponsesRequest, ToolChoice
from vllm_mcp_ext.types.source import ToolSource

_SECRET_FIELDS = ("headers", "authorization")
_DEFAULT_LIMITS = Limits()


def has_mcp_tools(body: dict[str, Any]) -> bool:
    tools = body.get("tools")
    return isinstance(tools, list) and any(isinstance(t, dict) and t.get("type") == "mcp" for t in tools)


def parse_request(
    body: dict[str, Any],
    registry: ToolServerRegistry,
    model: str,
    context: ParsableContext | None = None,
    *,
    remote: RemoteMcp | None = None,
    store_available: bool = True,
    gateway: GatewayResolver | None = None,
    limits: Limits = _DEFAULT_LIMITS,
    visible: Callable[[str], bool] = lambda label: True,
    input_optional: bool = False,
) -> ResponsesRequest:
    """Validate ``body`` within ``limits``; its ``input`` and ``instructions`` go into ``context``
    (the stored conversation of ``previous_response_id``, loaded by the caller, or a new one). An
    error names only the configured servers ``visible`` to the caller (its key's grant).
    ``input_optional``: no ``input`` is no new item (``POST /v1/responses/compact``)."""
    context = context if context is not None else ParsableContext()
    for name in door_fields.RESPONSES_REFUSED:
        if body.get(name):
            raise Unsupported(f"{name!r} is not supported", param=name)
    refuse_unhonoured(body)
    other = OtherTools()
    tools = body.get("tools") or []
    if isinstance(tools, list):
        limits.check_tool_count(len(tools))
    servers, functions, echo = _tools(tools, registry, remote, other, gateway, visible)
    store = body.get("store", True) is not False and store_available
    raw_choice = body.get("tool_choice", "auto")
    # Fields are checked in this order (the first error is the one reported).
    return ResponsesRequest(
        id=_string(body, "request_id") or new_id("resp"),  # vLLM's extension: the response's id
        model=_string(body, "model") or model,
        tools=echo,
        instructions=(instructions := _string(body, "instructions")),
        metadata=body.get("metadata") or {},
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_output_tokens=_count(body, "max_output_tokens"),
        max_tool_calls=_count(body, "max_tool_calls"),
        parallel_tool_calls=body.get("parallel_tool_calls", True) is not False,
        store=store,
        background=body.get("background") is True,
        previous_response_id=_string(body, "previous_response_id"),
        conversation_id=(conversation := conversation_id(body)),
        user=_string(body, "user"),
        text=(text := _text_config(body.get("text"))),
        reasoning=(reasoning := _reasoning(body.get("reasoning"))),
        prompt_cache_key=_string(body, "prompt_cache_key"),
        input_items=_read_input(
            context,
            instructions,
            body.get("input"),
            keep=store or bool(conversation),
            optional=input_optional,
        ),
        servers=servers,
        function_tools=functions,
        tool_choice=(choice := _namespaced_choice(_tool_choice(raw_choice, servers), other)),
        shown_tool_choice=_echoed_choice(raw_choice, choice),
        namespaced=other.namespaced,
        tool_search=_tool_search(other, servers),
        compact_threshold=_compaction(body.get("context_management")),
        deferred_functions=frozenset(other.deferred),
        response_format=_response_format(text),
        reasoning_effort=(reasoning or {}).get("effort"),
        engine_options=engine_options(body),
        truncation=_truncation(body.get("truncation")),
        top_logprobs=(top := _top_logprobs(body.get("top_logprobs"))),
        response_messages=body.get("enable_response_messages") is True,
        output_logprobs=top if _LOGPROBS in _include(body.get("include")) else None,
        mcp_progress=progress.INCLUDE in _include(body.get("include")),
        mcp_elicitation=elicitation.INCLUDE in _include(body.get("include")),
        stream=body.get("stream") is True,
        stored_body=without_secrets(body) if store else {},
    )


def without_secrets(body: dict[str, Any]) -> dict[str, Any]:
    """The request body as stored: MCP ``headers`` and ``authorization`` values never are."""
    body = copy.deepcopy(body)
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            for name in _SECRET_FIELDS:
                tool.pop(name, None)
    return body


def _approval(setting: Any, source: ToolSource, registry: ToolServerRegistry) -> ApprovalPolicy:
    """The request's ``require_approval`` under the operator's rules: a configured server's own
    (its annotations believed), any other source's the global ones (its annotations not)."""
    if isinstance(source, ServerConnection):
        return ApprovalPolicy(setting, source.spec.approvals, trusted=True)
    return ApprovalPolicy(setting, registry.approval_rules, trusted=False)


def _tools(
    tools: Any,
    registry: ToolServerRegistry,
    remote: RemoteMcp | None = None,
    other: OtherTools | None = None,
    gateway: GatewayResolver | None = None,
    visible: Callable[[str], bool] = lambda label: True,
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
            tool, source = mcp_source(raw, param, registry, remote, gateway, visible)
            if any(s.label == tool.server_label for s in servers):
                raise InvalidRequest(
                    f"server_label {tool.server_label!r} appears twice", param=f"{param}.server_label"
                )
            approval = _approval(tool.require_approval, source, registry)
            if raw.get("approvals") == "unavailable":  # our extension: this door cannot ask
                approval = replace(approval, can_ask=False)
            denied = _denied(raw.get("denied_tools"), f"{param}.denied_tools")
            deferred = tool.defer_loading is True
            servers.append(
                McpServerUse(tool.server_label, source, tool.allowed_tools, approval, denied, deferred)
            )
            shown = tool.model_dump(exclude_none=True, exclude={"headers", "authorization"})
            if remote is not None and tool.server_url and isinstance(source, RemoteSource):
                shown["server_url"] = remote.echo_url(tool.server_url)  # like OpenAI: no path
            echo.append(shown)
        elif kind == "function":
            functions.append((other or OtherTools()).function(raw, _function_tool(raw, param)))
            echo.append(raw)
        elif isinstance(raw, dict):
            functions.extend((other if other is not None else OtherTools()).add(raw, param))
            echo.append(raw)
        else:
            raise InvalidRequest("each tool must be an object with a 'type'", param=param)
    if remote is not None:
        remote.check_count(sum(isinstance(s.source, RemoteSource) for s in servers))
    return servers, functions, echo


def _compaction(raw: Any) -> int | None:
    """``context_management``: compaction entries (their lowest threshold); others are a 400."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidRequest("'context_management' must be an array", param="context_management")
    thresholds: list[int] = []
    for i, entry in enumerate(raw):
        param = f"context_management[{i}]"
        if not isinstance(entry, dict) or entry.get("type") != "compaction":
            raise Unsupported(f"{param}.type: only 'compaction' is supported", param=f"{param}.type")
        value = entry.get("compact_threshold")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidRequest(
                f"{param}.compact_threshold: a positive integer is required",
                param=f"{param}.compact_threshold",
            )
        thresholds.append(value or 0)
    positive = [t for t in thresholds if t]
    return min(positive) if positive else (0 if thresholds else None)


def _tool_search(other: OtherTools, servers: list[McpServerUse]) -> bool:
    """Whether the loop runs tool searches; deferred tools without a tool_search tool are a 400."""
    if not other.tool_search and (other.deferred or any(s.deferred for s in servers)):
        raise InvalidRequest(
            'tools with defer_loading need a {"type": "tool_search"} tool in tools to be found',
            param="tools",
        )
    return other.tool_search


def _denied(raw: Any, param: str) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise InvalidRequest("'denied_tools' must be an array of tool names", param=param)
    return frozenset(raw)


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
        if label is None and len(servers) == 1:
            label = servers[0].label  # the request's one mcp tool (Vercel AI SDK sends no label)
        if not isinstance(label, str):
            raise InvalidRequest(
                'tool_choice {"type": "mcp"} needs the "server_label" of one of the request\'s mcp tools',
                param="tool_choice.server_label",
                code="invalid_tool_choice",
            )
        if not any(s.label == label for s in servers):
            raise InvalidRequest(
                f"tool_choice names server_label {label!r}, which is not among the request's mcp tools",
                param="tool_choice.server_label",
                code="invalid_tool_choice",
            )
        return ForcedTool("mcp", raw.get("name"), label)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return ForcedTool("function", raw["name"])
    raise InvalidRequest(
        "tool_choice must be 'auto', 'none', 'required', {\"type\": \"mcp\", \"server_label\", "
        '"name"} or {"type": "function", "name"}',
        param="tool_choice",
        code="invalid_tool_choice",
    )


def _namespaced_choice(choice: ToolChoice, other: OtherTools) -> ToolChoice:
    if isinstance(choice, ForcedTool) and choice.kind == "function" and choice.name:
        return ForcedTool("function", resolve_function_choice(choice.name, other.namespaced))
    return choice


def _echoed_choice(raw: Any, choice: ToolChoice) -> Any:
    """``tool_choice`` as sent, with the label an ``{"type": "mcp"}`` left out filled in (OpenAI's
    ``ToolChoiceMcp`` requires it)."""
    if isinstance(choice, ForcedTool) and choice.kind == "mcp" and isinstance(raw, dict):
        return {**raw, "server_label": choice.server_label}
    return raw


def _reasoning(raw: Any) -> dict[str, Any] | None:
    """Echoed as sent; ``effort`` goes to the chat template. ``summary`` and the ``include`` of
    encrypted reasoning have no meaning for a chat-template model, as on stock vLLM."""
    if raw is None:
        return None
    try:
        Reasoning.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(["reasoning", *(str(p) for p in err["loc"])])
        raise InvalidRequest(f"{where}: {err['msg']}", param=where) from None
    return dict(raw)


_LOGPROBS = "message.output_text.logprobs"


def _top_logprobs(raw: Any) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 20:
        raise InvalidRequest("'top_logprobs' must be an integer from 0 to 20", param="top_logprobs")
    return raw


def _include(raw: Any) -> list[str]:
    """``include``: output text logprobs are returned; the other values (encrypted reasoning,
    hosted tools' outputs) have nothing to add for a chat-template model, as on stock vLLM."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InvalidRequest("'include' must be an array of strings", param="include")
    return raw


def conversation_id(body: dict[str, Any]) -> str | None:
    """``conversation``: an id, or ``{"id": ...}``; not together with ``previous_response_id``."""
    raw = body.get("conversation")
    if raw is None:
        return None
    value = raw.get("id") if isinstance(raw, dict) else raw
    if not isinstance(value, str) or not value:
        raise InvalidRequest(
            "'conversation' must be a conversation id or {\"id\": ...}", param="conversation"
        )
    if body.get("previous_response_id") is not None:
        raise InvalidRequest(
            "'conversation' and 'previous_response_id' cannot be used together", param="conversation"
        )
    return value


def _truncation(raw: Any) -> Literal["auto", "disabled"]:
    if raw is None or raw == "disabled":
        return "disabled"
    if raw == "auto":
        return "auto"
    raise InvalidRequest("'truncation' must be 'auto' or 'disabled'", param="truncation")


def _text_config(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {"format": {"type": "text"}}
    if not isinstance(raw, dict) or not isinstance(raw.get("format", {}), dict):
        raise InvalidRequest("'text' must be an object with a 'format' object", param="text")
    fmt = raw.get("format") or {"type": "text"}
    if fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(
            "text.format.type must be text, json_object or json_schema", param="text.format.type"
        )
    if fmt["type"] == "json_schema" and not isinstance(fmt.get("schema"), dict):
        raise InvalidRequest("a json_schema text format needs a 'schema' object", param="text.format.schema")
    return {**raw, "format": fmt}


def _response_format(text: dict[str, Any]) -> dict[str, Any] | None:
    """`text.format` as chat completions' ``response_format`` (structured outputs). With tools,
    the tool parser's ``adjust_request`` turns it into one structural tag: each turn is either
    tool calls (after the parser's trigger, e.g. hermes ``<tool_call>``) or the constrained
    answer, so tool-call turns are not held to the answer's format."""
    fmt = text["format"]
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
    schema.setdefault("name", "response")
    return {"type": "json_schema", "json_schema": schema}


def _read_input(
    context: ParsableContext, instructions: str | None, raw: Any, *, keep: bool, optional: bool = False
) -> list[dict[str, Any]]:
    """The instructions and each ``input`` item into the context; and, when the response is
    kept, the items as ``GET /v1/responses/{id}/input_items`` lists them (ids given once)."""
    context.instructions = instructions
    if raw is None and optional:
        return []
    if isinstance(raw, str):
        item = {"type": "message", "role": "user", "content": raw}
        context.add_item(item, "input")
        return [input_item(item)] if keep else []
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty array of items", param="input")
    for i, item in enumerate(raw):
        context.add_item(flat_call_name(item) if isinstance(item, dict) else item, f"input[{i}]")
    context.close_input()
    return [input_item(item) for item in raw] if keep else []


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
