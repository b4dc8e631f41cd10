"""One validated Responses request, as every layer below the Responses core reads it.

`responses.request.parse_request` builds it from a body, once; the loop runs with it and the
response stream's snapshots repeat its fields. Like the MCP SDK's ``mcp.types``, this module
imports nothing of the package above it, so any layer may use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mcp import types
from openai.types.responses.tool import McpAllowedTools, McpRequireApproval

from vllm_mcp_ext.config.policy import ApprovalRules, asks
from vllm_mcp_ext.types.source import ToolSource


class ToolFilter(Protocol):
    tool_names: list[str] | None
    read_only: bool | None


def matches_filter(tool: types.Tool, flt: ToolFilter) -> bool:
    """``{tool_names, read_only}``, as in ``allowed_tools`` and ``require_approval``: every given
    criterion must hold; ``read_only`` compares with the tool's ``readOnlyHint``."""
    if flt.tool_names is not None and tool.name not in flt.tool_names:
        return False
    if flt.read_only is not None:
        read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        if read_only != flt.read_only:
            return False
    return True


ApprovalDecision = Literal["run", "ask", "refuse"]


@dataclass(frozen=True)
class ApprovalPolicy:
    """One server's ``require_approval``. Absent means "always", as on OpenAI, unless the
    operator set rules by tool annotations (``operator``, docs/policy.md): then those decide, and
    a request may ask more than they do, or less only where they allow. With the filter object,
    ``always`` wins over ``never``, and a tool that neither names needs approval."""

    setting: McpRequireApproval = None
    operator: ApprovalRules | None = None
    trusted: bool = True  # whether the server's annotations are believed (configured servers)
    can_ask: bool = True  # False on a door with no approvals (Anthropic's connector): refused instead

    def decide(self, tool: types.Tool) -> ApprovalDecision:
        """What a call of ``tool`` does: it runs, it waits for the user's approval, or, where the
        door cannot ask (``can_ask``), it is refused. The one place the loop asks this."""
        if not self.needs_approval(tool):
            return "run"
        return "ask" if self.can_ask else "refuse"

    def needs_approval(self, tool: types.Tool) -> bool:
        requested = None if self.setting is None else self._requested
        return asks(self.operator, tool, requested, trusted=self.trusted)

    def _requested(self, tool: types.Tool) -> bool:
        setting = self.setting
        if setting is None or setting == "always":
            return True
        if setting == "never":
            return False
        if setting.always is not None and matches_filter(tool, setting.always):
            return True
        return not (setting.never is not None and matches_filter(tool, setting.never))


NEVER = ApprovalPolicy("never")


@dataclass(frozen=True)
class McpServerUse:
    """One ``{"type": "mcp"}`` tool of the request, and the server it resolved to."""

    label: str
    source: ToolSource
    allowed: McpAllowedTools | None = None
    approval: ApprovalPolicy = NEVER
    # ``denied_tools`` (our extension; Anthropic's mcp_toolset denylists need it): hidden tools
    denied: frozenset[str] = frozenset()
    deferred: bool = False  # ``defer_loading``: its tools wait for tool_search (loop/tool_search.py)


@dataclass(frozen=True)
class ForcedTool:
    """``tool_choice`` naming one tool (MCP or function) or, with no name, one MCP server."""

    kind: Literal["mcp", "function"]
    name: str | None
    server_label: str | None = None


ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass(frozen=True)
class ResponsesRequest:
    """One validated request: what the loop runs with and what every response snapshot shows.

    Built once per request by `parse_request`; nothing copies its fields elsewhere (the response
    stream and the loop read them here).
    """

    id: str
    model: str
    # -- what the loop runs with
    servers: list[McpServerUse] = field(default_factory=list)
    function_tools: list[dict[str, Any]] = field(default_factory=list)  # chat-completions form
    tool_choice: ToolChoice = "auto"
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None  # chat-completions form of `text.format`
    reasoning_effort: str | None = None  # `reasoning.effort`: a chat-template kwarg, as vLLM passes it
    engine_options: dict[str, Any] = field(default_factory=dict)  # vLLM's extensions (engine_options.py)
    truncation: Literal["auto", "disabled"] = "disabled"
    top_logprobs: int = 0
    output_logprobs: int | None = None  # top_logprobs, when `include` asks for output text logprobs
    response_messages: bool = False  # vLLM's `enable_response_messages`: each turn's raw prompt/output
    mcp_progress: bool = False  # `include: ["mcp_call.progress"]`: progress events (events.progress)
    # `include: ["mcp_elicitation"]`: a server's question pauses the response (events.elicitation)
    mcp_elicitation: bool = False
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat name -> (namespace, name)
    tool_search: bool = False  # a tool_search tool: deferred tools are found in the loop
    deferred_functions: frozenset[str] = frozenset()  # function tools with defer_loading
    # `context_management` compaction: the prompt tokens that trigger it (0: a share of the
    # window), None when off (loop/compaction.py)
    compact_threshold: int | None = None
    # -- what the response shows as given (tools without secrets, server_url without its path)
    tools: list[Any] = field(default_factory=list)
    shown_tool_choice: Any = "auto"
    instructions: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] | None = None  # echoed as sent
    prompt_cache_key: str | None = None  # echoed as sent
    previous_response_id: str | None = None
    conversation_id: str | None = None  # `conversation`: its items come first; this response's join it
    user: str | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    # -- how it is delivered and kept
    store: bool = True
    background: bool = False
    stream: bool = False
    stored_body: dict[str, Any] = field(default_factory=dict)  # the body without secrets
    input_items: list[dict[str, Any]] = field(default_factory=list)  # `input`, listed with ids
