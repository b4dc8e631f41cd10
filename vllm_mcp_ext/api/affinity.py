"""What a prefix-aware router needs to send a conversation's next turn to the replica that holds
its KV prefix (docs/scale-out.md): two response headers on ``POST /v1/responses``.

A request that continues with ``previous_response_id`` carries only the new input, so a router
that hashes the prompt in the body (production-stack's prefix-aware logic, llm-d's approximate
prefix scorer) sees nothing of the prefix. It can route by these instead.
"""

from __future__ import annotations

import socket

from vllm_mcp_ext.loop.run import Run

SESSION_HEADER = "x-vllm-mcp-session"  # the conversation's prefix key: send it back on its next turn
REPLICA_HEADER = "x-vllm-mcp-replica"  # the server (engine) that ran it: its KV cache holds the prefix


def replica_name(configured: str | None, port: int | None) -> str:
    """``VLLM_MCP_REPLICA``, else ``<hostname>:<port>``: the same for every API server process of
    one ``vllm serve`` (they share one engine and its KV cache)."""
    return configured or f"{socket.gethostname()}:{port}"


def affinity_headers(run: Run, replica: str) -> dict[str, str]:
    return {SESSION_HEADER: run.context.session or run.id, REPLICA_HEADER: replica}
