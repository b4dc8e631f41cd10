"""An MCP server whose tools ask the client for things: input (elicitation, form and URL mode),
a model's answer (sampling), and progress and log messages along the way. Each tool takes no
arguments, so a forced ``tool_choice`` makes any model call it; each result says what the client
answered, so a test reads the client's side in the tool's output.

Run: ``python asking.py`` (stdio) or ``python asking.py <port>`` (streamable HTTP at /mcp).
"""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

import anyio
from mcp import types
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
    Sample,
)
from mcp.shared.exceptions import MCPDeprecationWarning
from pydantic import BaseModel

# sampling and logging are deprecated in 2026-07-28, and still what 2025-11-25 servers use
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

SAMPLING_PROMPT = "Say hello to the tool server."
COUNT_TO = 3


class Order(BaseModel):
    quantity: int = 2
    gift_wrap: bool = False
    size: str = "medium"


# The same asks as resolvers, which the SDK sends as requests on 2025-11-25 and as
# `input_required` rounds on 2026-07-28 (module level: the tools' annotations name them).
async def ask_order(ctx: Context) -> Elicit[Order]:
    return Elicit("How many, and gift wrapped?", Order)


async def ask_greeting(ctx: Context) -> Sample:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=SAMPLING_PROMPT))
    return Sample([message], max_tokens=64, system_prompt="Be brief.")


def build() -> MCPServer:
    server = MCPServer("asking")

    @server.tool(description="Confirm an order with the user.")
    async def confirm_order(ctx: Context) -> str:
        answer = await ctx.elicit("How many, and gift wrapped?", schema=Order)
        if answer.action != "accept":
            return f"elicitation {answer.action}"
        return f"elicitation accept {answer.data.model_dump_json()}"

    @server.tool(description="Send the user to a sign-in page.")
    async def sign_in(ctx: Context) -> str:
        answer = await ctx.elicit_url("Sign in, please", "https://example.test/login", "login-1")
        return f"elicitation {answer.action}"

    @server.tool(description="Ask the client's model to write a greeting.")
    async def greet(ctx: Context) -> str:
        message = types.SamplingMessage(
            role="user", content=types.TextContent(type="text", text=SAMPLING_PROMPT)
        )
        try:
            result: Any = await ctx.request_context.session.create_message(
                [message], max_tokens=64, system_prompt="Be brief.", related_request_id=ctx.request_id
            )
        except Exception as exc:  # the client refused: say so in the result
            return f"sampling refused: {exc}"
        text = result.content.text if isinstance(result.content, types.TextContent) else ""
        return f"sampled by {result.model} ({result.stop_reason}): {text!r}"

    @server.tool(description="Confirm an order with the user (either protocol generation).")
    async def order_form(order: Annotated[ElicitationResult[Order], Resolve(ask_order)]) -> str:
        if not isinstance(order, AcceptedElicitation):
            return f"elicitation {order.action}"
        return f"elicitation accept {order.data.model_dump_json()}"

    @server.tool(description="Ask the client's model for a greeting (either protocol generation).")
    async def greeting(result: Annotated[types.CreateMessageResult, Resolve(ask_greeting)]) -> str:
        text = result.content.text if isinstance(result.content, types.TextContent) else ""
        return f"sampled by {result.model} ({result.stop_reason}): {text!r}"

    @server.tool(description="Report a first step, then take long.")
    async def slow_steps(ctx: Context) -> str:
        await ctx.report_progress(1, 10, "started")
        await anyio.sleep(60)
        return "done"

    @server.tool(description="Count to three, reporting progress.")
    async def count(ctx: Context) -> str:
        for step in range(1, COUNT_TO + 1):
            await ctx.report_progress(step, COUNT_TO, f"step {step}")
            await ctx.request_context.session.send_log_message(
                "info", f"counted {step}", logger="counter", related_request_id=ctx.request_id
            )
        return f"counted to {COUNT_TO}"

    return server


if __name__ == "__main__":
    app = build()
    if len(sys.argv) > 1:
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
    else:
        app.run("stdio")
