"""``truncation: "auto"``: when the conversation does not fit the model's context window, the
oldest items are dropped from the beginning, as OpenAI documents, until it fits.

What is dropped is a whole exchange (a user message and everything the model and the tools said
after it, up to the next user message); with one user message left, the oldest tool round after
it (the model's tool calls and their results). The system message and the latest user message
are always kept.
"""

from __future__ import annotations

from typing import Any

_LEADING = ("system", "developer")


def drop_oldest(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``messages`` without their oldest exchange or tool round; None when nothing can go."""
    head = 0
    while head < len(messages) and messages[head].get("role") in _LEADING:
        head += 1
    kept, rest = messages[:head], messages[head:]
    later_user = next((i for i, m in enumerate(rest) if i > 0 and m.get("role") == "user"), None)
    if later_user is not None:
        return kept + rest[later_user:]
    if len(rest) > 2 and rest[1].get("role") == "assistant" and rest[1].get("tool_calls"):
        end = 2
        while end < len(rest) and rest[end].get("role") == "tool":
            end += 1
        if end < len(rest):
            return kept + rest[:1] + rest[end:]
    return None
