"""``response.mcp_call.progress``: a running MCP call's ``notifications/progress``, an event of our
own that only a request with ``include: ["mcp_call.progress"]`` gets (a stock client's stream is
what the OpenAI SDK knows). The same request's running ``mcp_call`` items carry the latest as
``progress`` (what a background response's snapshot shows)."""

from __future__ import annotations

from typing import Literal

from openai import BaseModel

INCLUDE = "mcp_call.progress"  # the `include` value that opts in


class McpCallProgress(BaseModel):
    progress: float
    total: float | None = None
    message: str | None = None


class ResponseMcpCallProgressEvent(BaseModel):
    type: Literal["response.mcp_call.progress"]
    item_id: str
    output_index: int
    sequence_number: int
    progress: float
    total: float | None = None
    message: str | None = None
