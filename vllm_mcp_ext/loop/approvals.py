"""``require_approval``: which calls wait for the user, and the user's answers."""

from __future__ import annotations

from dataclasses import dataclass

from mcp import types
from openai.types.responses.tool import McpRequireApproval

from vllm_mcp_ext.loop.toolset import matches_filter


@dataclass(frozen=True)
class ApprovalPolicy:
    """One server's ``require_approval``. Absent means "always", as on OpenAI. With the filter
    object, ``always`` wins over ``never``, and a tool that neither names needs approval."""

    setting: McpRequireApproval = None

    def needs_approval(self, tool: types.Tool) -> bool:
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
class PendingApproval:
    """A call the model made that waits for the user: it runs exactly as it was asked for."""

    approval_id: str
    call_id: str  # the tool call's id in the model's conversation
    server_label: str
    name: str  # the MCP tool's own name
    arguments: str


@dataclass(frozen=True)
class ApprovalAnswer:
    approval_id: str
    approve: bool
    reason: str | None = None


def denial_text(reason: str | None) -> str:
    """What the model is told when the user says no."""
    text = "The user denied this tool call; it did not run."
    return f"{text} Reason: {reason}" if reason else text
