"""A validated Responses request, as the loop needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from openai.types.responses.tool import McpAllowedTools

from vllm_mcp_ext.events import ResponseTemplate
from vllm_mcp_ext.loop.approvals import NEVER, ApprovalPolicy
from vllm_mcp_ext.loop.conversation import Conversation
from vllm_mcp_ext.servers.source import ToolSource


@dataclass(frozen=True)
class McpServerUse:
    """One ``{"type": "mcp"}`` tool of the request, and the server it resolved to."""

    label: str
    source: ToolSource
    allowed: McpAllowedTools | None = None
    approval: ApprovalPolicy = NEVER


@dataclass(frozen=True)
class ForcedTool:
    """``tool_choice`` naming one tool (MCP or function) or, with no name, one MCP server."""

    kind: Literal["mcp", "function"]
    name: str | None
    server_label: str | None = None


ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass
class LoopRequest:
    template: ResponseTemplate
    conversation: Conversation
    servers: list[McpServerUse]
    function_tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: ToolChoice = "auto"
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    parallel_tool_calls: bool = True
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None  # `reasoning.effort`: a chat-template kwarg, as vLLM passes it

    def model_messages(self) -> list[dict[str, Any]]:
        """The conversation for the chat template: this request's instructions first (those of
        earlier responses are not carried over, as on OpenAI)."""
        instructions = self.template.instructions
        system = [{"role": "system", "content": instructions}] if instructions else []
        return system + self.conversation.messages
