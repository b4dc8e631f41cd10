"""The calculator's tools, names, schemas and descriptions unchanged (so the tiny model calls them
as it was trained to), each asking its client for something while it runs: `add` reports progress
and log messages, `multiply` elicits the asking server's order form, `divide` samples the client's
model. Each result says what the client answered."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from mcp import types
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import ToolAnnotations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asking import COUNT_TO, SAMPLING_PROMPT, Order

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)  # 2025-11-25 sampling and logging

server = MCPServer("calculator")
READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(description="Add two integers.", annotations=READ_ONLY)
async def add(a: int, b: int, ctx: Context) -> str:
    for step in range(1, COUNT_TO + 1):
        await ctx.report_progress(step, COUNT_TO, f"step {step}")
        await ctx.request_context.session.send_log_message(
            "info", f"counted {step}", logger="counter", related_request_id=ctx.request_id
        )
    return str(a + b)


@server.tool(description="Multiply two integers.", annotations=READ_ONLY)
async def multiply(a: int, b: int, ctx: Context) -> str:
    answer = await ctx.elicit("How many, and gift wrapped?", schema=Order)
    if answer.action != "accept":
        return f"{a * b} (elicitation {answer.action})"
    return f"{a * b} (elicitation accept {answer.data.model_dump_json()})"


@server.tool(description="Divide a by b.", annotations=READ_ONLY)
async def divide(a: int, b: int, ctx: Context) -> str:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=SAMPLING_PROMPT))
    try:
        result: Any = await ctx.request_context.session.create_message(
            [message], max_tokens=64, system_prompt="Be brief.", related_request_id=ctx.request_id
        )
    except Exception as exc:
        return f"sampling refused: {exc}"
    text = result.content.text if isinstance(result.content, types.TextContent) else ""
    return f"sampled by {result.model} ({result.stop_reason}): {text!r}"


@server.tool(description="Stop the calculator process (for fault tests).")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
