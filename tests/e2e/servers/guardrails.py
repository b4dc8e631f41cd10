"""Guardrail hooks for the operator-policy e2e tests (tests/e2e/test_policy.py), loaded by the
vLLM server from the tool-server file as ``tests.e2e.servers.guardrails:<Name>``."""

from __future__ import annotations

from dataclasses import replace

from vllm_mcp_ext.policy.guardrails import Arguments, CallInfo, Guardrail, Refuse, Result


class NoDivision(Guardrail):
    """Refuses every call of ``divide``."""

    async def before_call(self, call: CallInfo, arguments: Arguments) -> Refuse | None:
        return Refuse("division is not allowed on this server") if call.tool == "divide" else None


class HideSums(Guardrail):
    """Replaces what ``add`` of the server labelled ``calc`` returns."""

    async def after_call(self, call: CallInfo, result: Result) -> Result | None:
        hidden = call.tool == "add" and call.server_label == "calc"
        return replace(result, text="[redacted]") if hidden else None
