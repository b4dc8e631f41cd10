"""The OpenAI Agents SDK against the server: an agent with the server's `calc` MCP tools, and every
call waits for a yes on the terminal (``on_approval_request``).

pip install openai-agents==0.24.0
python examples/agents_sdk.py [BASE_URL] [QUESTION]
"""

from __future__ import annotations

import asyncio
import sys

from agents import (
    Agent,
    HostedMCPTool,
    MCPToolApprovalFunctionResult,
    MCPToolApprovalRequest,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1"
question = sys.argv[2] if len(sys.argv) > 2 else "What is 2 plus 3?"


def ask_the_user(request: MCPToolApprovalRequest) -> MCPToolApprovalFunctionResult:
    call = request.data  # the mcp_approval_request item: server_label, name, arguments
    answer = input(f"run {call.name}({call.arguments}) on {call.server_label}? [y/N] ")
    if answer.strip().lower() == "y":
        return {"approve": True}
    return {"approve": False, "reason": "The user said no."}


async def main() -> None:
    set_tracing_disabled(True)  # the SDK would upload traces to OpenAI's platform
    client = AsyncOpenAI(base_url=base_url, api_key="unused")
    model = (await client.models.list()).data[0].id
    calc = HostedMCPTool(
        tool_config={"type": "mcp", "server_label": "calc", "require_approval": "always"},
        on_approval_request=ask_the_user,
    )
    agent = Agent(
        name="calculator",
        model=OpenAIResponsesModel(model=model, openai_client=client),
        tools=[calc],
        model_settings=ModelSettings(temperature=0),
    )
    result = await Runner.run(agent, question)
    for item in result.new_items:
        if item.type == "tool_call_item" and item.raw_item.type == "mcp_call":
            call = item.raw_item
            print(f"{call.name}({call.arguments}) -> {call.output or call.error}")
    print(result.final_output)


if __name__ == "__main__":
    asyncio.run(main())
