"""Compaction (``context_management: [{"type": "compaction", "compact_threshold": N}]`` on
``/v1/responses``): when the next turn's prompt is estimated past the threshold (the previous
turn's prompt plus what the model wrote; the first turn's as rendered), the model first writes a
summary of the conversation (one turn without tools, `COMPACT_PROMPT`), which becomes a
``compaction`` item; the conversation then goes on from the user's messages and that summary.

``POST /v1/responses/compact`` runs the same summary turn on its own (`AgentLoop.compact`) and
answers with the user's messages and the item.

The item's ``encrypted_content`` is the summary, base64-encoded JSON (nothing secret in it: it is
what the model wrote for itself, opaque to clients as on OpenAI). Sent back as ``input``, a
compaction item becomes the summary message again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from vllm_mcp_ext.types.parts import TurnUsage

COMPACT_PROMPT = (
    "The conversation is getting long. Summarize it for yourself: what the user asked, what the "
    "tools returned that still matters, and what is left to do. Write only the summary."
)
SUMMARY_HEADER = "Summary of the conversation so far (compacted):\n"
COMPACT_MAX_TOKENS = 1024  # the summary turn's output
DEFAULT_SHARE = 0.8  # without compact_threshold: this share of the context window


@dataclass(frozen=True)
class Summary:
    """What the summary turn wrote, and its tokens."""

    text: str
    usage: TurnUsage


def encode(summary: str) -> str:
    return base64.b64encode(json.dumps({"summary": summary}).encode()).decode()


def decode(content: str) -> str | None:
    try:
        value = json.loads(base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError):
        return None
    summary = value.get("summary") if isinstance(value, dict) else None
    return summary if isinstance(summary, str) else None


def summary_message(summary: str) -> dict[str, Any]:
    return {"role": "user", "content": SUMMARY_HEADER + summary}


def compacted(messages: list[dict[str, Any]], summary: str) -> list[dict[str, Any]]:
    """The user's messages (and the system/developer ones), then the summary, as OpenAI keeps them."""
    return [*kept_messages(messages, ("system", "user")), summary_message(summary)]


def kept_messages(messages: list[dict[str, Any]], roles: tuple[str, ...]) -> list[dict[str, Any]]:
    """The messages of these roles that compaction keeps (earlier summaries are not: the new
    summary covers them)."""
    return [m for m in messages if m.get("role") in roles and not _is_summary(m)]


def _is_summary(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, str) and content.startswith(SUMMARY_HEADER)
