"""Message content as text: which content parts are text, and a message's content flattened to
one string. The Responses door, the chat door, the router and the loop all read content this
way; this is the one definition (a leaf: it imports only the error types)."""

from __future__ import annotations

from typing import Any

from vllm_mcp_ext.errors import InvalidRequest, Unsupported

# Content part types whose ``text`` is the content: Responses input and output text, and chat text.
# A tuple, not a set: a client's ``type`` may be any JSON value, a list or an object included.
TEXT_PARTS = ("input_text", "output_text", "text")


def flatten_text(content: Any, param: str) -> str:
    """``content`` (a string, or an array of text parts) as one string; a 400 naming
    ``{param}.content`` (or the part) otherwise."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or an array", param=f"{param}.content")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS:
            raise Unsupported(f"content part type {kind!r} is not supported", param=f"{param}.content[{j}]")
        texts.append(str(part.get("text", "")))
    return "".join(texts)
