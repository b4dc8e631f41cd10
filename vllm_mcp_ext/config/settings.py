"""Operator settings. vLLM's argument parser rejects unknown flags, so they come from the
environment (``VLLM_MCP_*``), read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vllm_mcp_ext.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    connect_timeout: float = 10.0  # seconds to open a session, initialize and list tools
    call_timeout: float = 60.0  # seconds for one tools/call
    max_turns: int = 16  # model turns per response before it ends `incomplete`
    retry_max_delay: float = 30.0  # ceiling of the reconnect backoff
    store: str | None = None  # VLLM_MCP_STORE: SQLite path, postgresql:// URL, or "off"
    store_max_age: float = 30 * 24 * 3600.0  # seconds a stored response is kept
    max_tool_output: int = 100_000  # characters of one tool result kept for the model and the item

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            connect_timeout=_number(env, "VLLM_MCP_CONNECT_TIMEOUT", cls.connect_timeout),
            call_timeout=_number(env, "VLLM_MCP_CALL_TIMEOUT", cls.call_timeout),
            max_turns=int(_number(env, "VLLM_MCP_MAX_TURNS", cls.max_turns)),
            retry_max_delay=_number(env, "VLLM_MCP_RETRY_MAX_DELAY", cls.retry_max_delay),
            store=env.get("VLLM_MCP_STORE") or None,
            store_max_age=_number(env, "VLLM_MCP_STORE_MAX_AGE", cls.store_max_age),
            max_tool_output=int(_number(env, "VLLM_MCP_MAX_TOOL_OUTPUT", cls.max_tool_output)),
        )


def _number(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value
