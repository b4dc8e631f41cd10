"""Example guardrail hooks for the tool-server file's ``policy.guardrails`` (docs/policy.md)."""
