"""The loop in your own program: no server, the same items as /v1/responses.

    MODEL=Qwen/Qwen3-8B python examples/python_api.py

`MODEL=$(python -m tests.support.tiny_model) python examples/python_api.py` runs it with the tiny
test model on a CPU. See docs/python-api.md.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import torch

from vllm_mcp_ext import McpEngine

CALCULATOR = Path(__file__).with_name("servers") / "calculator.py"
# What vLLM's CPU build needs for the tiny model; a GPU needs none of it.
ON_CPU = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.15, "block_size": 32}


async def main() -> None:
    async with McpEngine(
        os.environ["MODEL"],
        tool_server={"mcpServers": {"calc": {"command": sys.executable, "args": [str(CALCULATOR)]}}},
        enable_auto_tool_choice=True,
        tool_call_parser="hermes",
        max_model_len=2048,
        **({} if torch.cuda.is_available() else ON_CPU),
    ) as engine:
        response = await engine.responses.create(
            model=engine.model_name,
            input="What is 2 plus 3?",
            tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
            temperature=0,
        )
    for item in response.output:
        if item.type == "mcp_call":
            print(
                f"mcp_call {item.server_label}.{item.name}({item.arguments}) -> {item.output or item.error}"
            )
    print("answer:", response.output_text)


if __name__ == "__main__":
    asyncio.run(main())
