"""Operator settings. vLLM's argument parser rejects unknown flags, so they come from the
environment (``VLLM_MCP_*``), read once at start-up (see `config.options`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vllm_mcp_ext.config.options import load, option


@dataclass(frozen=True)
class Settings:
    # seconds to open a session, initialize and list tools
    connect_timeout: float = option(10.0, env="VLLM_MCP_CONNECT_TIMEOUT", kind="number")
    # seconds for one tools/call
    call_timeout: float = option(60.0, env="VLLM_MCP_CALL_TIMEOUT", kind="number")
    # model turns per response before it ends `incomplete`
    max_turns: int = option(16, env="VLLM_MCP_MAX_TURNS", kind="int")
    # ceiling of the reconnect backoff
    retry_max_delay: float = option(30.0, env="VLLM_MCP_RETRY_MAX_DELAY", kind="number")
    # SQLite path, postgresql:// URL, or "off"
    store: str | None = option(None, env="VLLM_MCP_STORE", kind="text")
    # seconds a stored response is kept
    store_max_age: float = option(30 * 24 * 3600.0, env="VLLM_MCP_STORE_MAX_AGE", kind="number")
    # per-response timings at GET /v1/mcp/traces/{id}, for the benchmarks (observe/trace.py)
    trace: bool = option(False, env="VLLM_MCP_TRACE", kind="bool")
    # host names and addresses /mcp answers besides loopback and --host ("*": any; access/origin.py)
    allowed_hosts: str | None = option(None, env="VLLM_MCP_ALLOWED_HOSTS", kind="text")
    # SSE events /mcp keeps for Last-Event-ID resumption, all sessions together (proxy/events.py)
    sse_events: int = option(1000, env="VLLM_MCP_SSE_EVENTS", kind="int")
    # characters of one tool result kept for the model and the item
    max_tool_output: int = option(100_000, env="VLLM_MCP_MAX_TOOL_OUTPUT", kind="int")
    # tokens of one tool result the model sees (the item keeps it whole); None: a quarter of the
    # model's context window (engine/fit.py)
    max_tool_result_tokens: int | None = option(None, env="VLLM_MCP_MAX_TOOL_RESULT_TOKENS", kind="int")
    # identical calls answered with the earlier result before the MCP tools go off (loop/guards.py)
    max_repeated_calls: int = option(2, env="VLLM_MCP_MAX_REPEATED_CALLS", kind="int")
    # this server's name in the `x-vllm-mcp-replica` response header; None: "<hostname>:<port>"
    # (docs/scale-out.md)
    replica: str | None = option(None, env="VLLM_MCP_REPLICA", kind="text")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Raises `ConfigError` naming the variable of a bad value."""
        return load(cls, "settings", None, env)
