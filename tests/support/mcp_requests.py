"""What the end-to-end tests of MCP calls send to /v1/responses and read back: a request body
for the tiny model, answered greedily, and the response's ``mcp_call`` item."""

from __future__ import annotations

from typing import Any


def request(text: str, tools: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A /v1/responses body: ``text`` to the tiny model with ``tools``; ``extra`` adds or
    replaces fields (``input``, ``tools``, ``tool_choice``, ``include``...)."""
    return {
        "model": "tiny",
        "input": text,
        "tools": tools,
        "temperature": 0,
        "max_output_tokens": 64,
        **extra,
    }


def mcp_call(response: Any) -> Any:
    """The response's first ``mcp_call`` item (an openai SDK `Response`)."""
    return next(item for item in response.output if item.type == "mcp_call")
