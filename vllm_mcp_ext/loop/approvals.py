"""Calls that wait for the user, and the user's answers (which calls wait: `types.request.ApprovalPolicy`)."""

from __future__ import annotations

from dataclasses import dataclass


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


CANNOT_ASK = "this call needs the user's approval, which this API cannot ask for"


def denial_text(reason: str | None) -> str:
    """What the model is told when the user says no."""
    text = "The user denied this tool call; it did not run."
    return f"{text} Reason: {reason}" if reason else text
