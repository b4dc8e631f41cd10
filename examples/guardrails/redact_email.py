"""A guardrail that hides e-mail addresses from the model and the client: in every tool result
and in the final answer. Name it in the tool-server file:

    {"policy": {"guardrails": ["examples.guardrails.redact_email:RedactEmails"]}, "mcpServers": {...}}
"""

from __future__ import annotations

import re
from dataclasses import replace

from vllm_mcp_ext.policy.guardrails import Answer, CallInfo, Guardrail, Result

ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


class RedactEmails(Guardrail):
    async def after_call(self, call: CallInfo, result: Result) -> Result:
        return replace(result, text=ADDRESS.sub("[email]", result.text))

    async def on_answer(self, answer: Answer) -> Answer:
        return replace(answer, text=ADDRESS.sub("[email]", answer.text))
