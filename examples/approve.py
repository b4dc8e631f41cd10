"""Approve-and-continue with the openai SDK: every MCP call waits for a yes on the terminal.

python examples/approve.py [BASE_URL]
"""

from __future__ import annotations

import sys

from openai import OpenAI

base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1"
client = OpenAI(base_url=base_url, api_key="unused")
model = client.models.list().data[0].id
tools = [{"type": "mcp", "server_label": "calc"}]  # no require_approval: every call asks
response = client.responses.create(model=model, input="What is 2 plus 3?", tools=tools)
while requests := [i for i in response.output if i.type == "mcp_approval_request"]:
    answers = []
    for r in requests:
        ok = input(f"run {r.name}({r.arguments}) on {r.server_label}? [y/N] ").strip().lower() == "y"
        answers.append({"type": "mcp_approval_response", "approval_request_id": r.id, "approve": ok})
    response = client.responses.create(
        model=model, input=answers, tools=tools, previous_response_id=response.id
    )
for item in response.output:
    if item.type == "mcp_call":
        print(f"{item.name}({item.arguments}) -> {item.output}")
print(response.output_text)
