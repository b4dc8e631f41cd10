"""Ask the server a question that needs the calculator, and print what happened."""

from __future__ import annotations

import os
import sys

from openai import OpenAI

base_url = os.environ.get("BASE_URL", "http://127.0.0.1:8000/v1")
model = os.environ.get("MODEL_NAME", "tiny")
question = sys.argv[1] if len(sys.argv) > 1 else "Multiply 6 by 7, then add 8."

client = OpenAI(base_url=base_url, api_key="unused")
response = client.responses.create(
    model=model,
    input=question,
    tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
    temperature=0,
)
for item in response.output:
    if item.type == "mcp_call":
        print(f"mcp_call {item.server_label}.{item.name}({item.arguments}) -> {item.output or item.error}")
print("answer:", response.output_text)
