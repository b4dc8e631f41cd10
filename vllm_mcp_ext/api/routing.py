"""Which handler answers a ``POST /v1/responses``: the plugin's loop or vLLM's own.

The rule: installing the plugin never breaks a request stock vLLM answers. Requests with ``mcp``
tools, continuations of the plugin's own stored responses, and requests carrying a ``compaction``
item (``POST /v1/responses/compact``'s: only the plugin reads its own) are the plugin's. Any other
request the loop serves only when it understands every field, tool and input item in it as well
as stock does (plain text, function tools, background, stored responses); everything else
(namespace, custom and hosted tools, images, ``reasoning``, logprobs, ``prompt``...) goes to vLLM
unchanged.
gpt-oss (harmony) requests with ``mcp`` tools are the plugin's too (``engine/harmony/``); plain
gpt-oss requests, and those whose only ``mcp`` tools are vLLM's demo tools (``--tool-server demo``:
labels ``code_interpreter``, ``web_search_preview``, ``container``, not configured in the plugin),
stay on vLLM's own harmony handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vllm_mcp_ext.responses.request import has_mcp_tools
from vllm_mcp_ext.types import door_fields
from vllm_mcp_ext.types.content import TEXT_PARTS

_INPUT_ITEMS = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "mcp_list_tools",
        "mcp_call",
        "mcp_approval_request",
        "mcp_approval_response",
    }
)
# The server labels vLLM's gpt-oss handler gives its demo tool servers (python, browser, container).
DEMO_LABELS = frozenset({"code_interpreter", "web_search_preview", "container"})


@dataclass(frozen=True)
class Route:
    handler: Literal["plugin", "stock"]
    reason: str


def choose_route(
    body: dict[str, Any], *, harmony: bool, previous_is_ours: bool, own_labels: frozenset[str] = frozenset()
) -> Route:
    """``previous_is_ours``: the request's ``previous_response_id`` names a response the plugin
    stored (the caller looks it up; False without one). ``own_labels``: the servers configured
    in the plugin (a demo label among them is the plugin's)."""
    if harmony and _only_demo_tools(body, own_labels):
        return Route("stock", "vLLM's demo tools for gpt-oss")
    if has_mcp_tools(body):
        return Route("plugin", "mcp tools")
    if _has_compaction(body):
        return Route("plugin", "a compaction item (only the plugin reads its own)")
    if previous_is_ours:
        return Route("plugin", "continues a response of the plugin")
    if body.get("previous_response_id") is not None:
        return Route("stock", "previous_response_id names no response of the plugin")
    if harmony:
        return Route("stock", "gpt-oss renders with harmony")
    reason = _not_served(body)
    return Route("stock", reason) if reason else Route("plugin", "served as well as stock")


def _only_demo_tools(body: dict[str, Any], own_labels: frozenset[str]) -> bool:
    tools = body.get("tools")
    mcp = (
        [t for t in tools if isinstance(t, dict) and t.get("type") == "mcp"]
        if isinstance(tools, list)
        else []
    )
    return bool(mcp) and all(
        t.get("server_label") in DEMO_LABELS - own_labels
        and not t.get("server_url")
        and not t.get("connector_id")
        for t in mcp
    )


def _has_compaction(body: dict[str, Any]) -> bool:
    raw = body.get("input")
    return isinstance(raw, list) and any(isinstance(i, dict) and i.get("type") == "compaction" for i in raw)


def _not_served(body: dict[str, Any]) -> str | None:
    """Why the loop would serve this request worse than stock (or refuse it); None if it would not."""
    name = door_fields.RESPONSES.unserved(body)
    if name is not None:
        return f"field {name!r}"
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            return f"tool type {kind!r}"
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") != "function":
        return f"tool_choice type {choice.get('type')!r}"
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if tools and isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        return "text.format with tools"
    if isinstance(text, dict) and any(k != "format" for k in text):
        return "text options other than format"
    raw = body.get("input")
    for item in raw if isinstance(raw, list) else []:
        reason = _item_not_served(item)
        if reason:
            return reason
    return None


def _item_not_served(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None  # the loop's 400 names it; stock would refuse it too
    kind = item.get("type", "message")
    if not isinstance(kind, str) or kind not in _INPUT_ITEMS:
        return f"input item type {kind!r}"
    if kind == "function_call" and item.get("namespace"):
        return "namespaced function_call"
    if kind == "message" and isinstance(item.get("content"), list):
        for part in item["content"]:
            if isinstance(part, dict) and part.get("type") not in TEXT_PARTS:
                return f"content part type {part.get('type')!r}"
    return None


def choose_chat_route(body: dict[str, Any]) -> Route:
    """``POST /v1/chat/completions``: only requests with ``mcp`` tools are the plugin's; every
    other request is stock vLLM's, untouched."""
    if has_mcp_tools(body):
        return Route("plugin", "mcp tools")
    return Route("stock", "no mcp tools")


def choose_messages_route(body: dict[str, Any]) -> Route:
    """``POST /v1/messages``: requests using the MCP connector (``mcp_servers`` or an
    ``mcp_toolset`` tool) are the plugin's; every other request is stock vLLM's, untouched."""
    tools = body.get("tools")
    toolsets = isinstance(tools, list) and any(
        isinstance(t, dict) and t.get("type") == "mcp_toolset" for t in tools
    )
    if body.get("mcp_servers") or toolsets:
        return Route("plugin", "mcp connector")
    return Route("stock", "no mcp connector")
