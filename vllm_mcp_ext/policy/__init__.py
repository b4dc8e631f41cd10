"""Operator policy, set once in the tool-server file for every request (docs/policy.md):
approvals from tool annotations (``approvals.py``), guardrail hooks around each call and on the
answer (``guardrails.py``), and the audit record of every call (``audit.py``)."""
