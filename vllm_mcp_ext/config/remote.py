"""Operator settings for remote MCP servers (``server_url`` in a request).

They come from the ``remoteMcp`` section of the ``--tool-server`` mcp.json file and from
``VLLM_MCP_REMOTE_*`` environment variables; an environment variable wins over the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vllm_mcp_ext.config.options import load, option

_ENV = "VLLM_MCP_REMOTE"


@dataclass(frozen=True)
class RemoteSettings:
    # remote mode: an mcp tool may name a server_url
    enabled: bool = option(True, key="enabled", env=_ENV, kind="bool")
    # plain http for hosts the allowlist does not name
    allow_http: bool = option(False, key="allowHttp", env=f"{_ENV}_ALLOW_HTTP", kind="bool")
    # hosts, .suffixes, host:port, CIDRs that skip the default rules
    allow: tuple[str, ...] = option((), key="allow", env=f"{_ENV}_ALLOW", kind="list")
    # the same forms, always rejected (wins over allow)
    deny: tuple[str, ...] = option((), key="deny", env=f"{_ENV}_DENY", kind="list")
    # static name -> IP answers, still checked
    hosts: Mapping[str, str] = option({}, key="hosts", env=f"{_ENV}_HOSTS", kind="map")
    # seconds to connect and initialize
    connect_timeout: float = option(10.0, key="connectTimeout", env=f"{_ENV}_CONNECT_TIMEOUT", kind="number")
    # seconds for tools/list
    list_timeout: float = option(10.0, key="listTimeout", env=f"{_ENV}_LIST_TIMEOUT", kind="number")
    # seconds for one tools/call
    call_timeout: float = option(60.0, key="callTimeout", env=f"{_ENV}_CALL_TIMEOUT", kind="number")
    # one HTTP response body (or SSE event) from a server
    max_response_bytes: int = option(
        8 * 1024 * 1024, key="maxResponseBytes", env=f"{_ENV}_MAX_RESPONSE_BYTES", kind="int"
    )
    # tools/call in flight per remote server URL, all requests together
    max_concurrent_calls: int = option(
        8, key="maxConcurrentCalls", env=f"{_ENV}_MAX_CONCURRENT_CALLS", kind="int"
    )
    max_servers_per_request: int = option(
        8, key="maxServersPerRequest", env=f"{_ENV}_MAX_SERVERS", kind="int"
    )
    # seconds an unused pooled session stays open
    idle_timeout: float = option(30.0, key="idleTimeout", env=f"{_ENV}_IDLE_TIMEOUT", kind="number")
    max_pooled_sessions: int = option(64, key="maxPooledSessions", env=f"{_ENV}_MAX_POOLED", kind="int")

    @classmethod
    def load(
        cls, section: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> RemoteSettings:
        """From the ``remoteMcp`` section and ``VLLM_MCP_REMOTE_*``. Raises `ConfigError`."""
        return load(cls, "remoteMcp", section, env)


def describe_remote(settings: RemoteSettings) -> str:
    """One log line: what remote mode lets requests reach (no secrets in settings to hide)."""
    if not settings.enabled:
        return "remote MCP servers (server_url): off"
    scheme = "http and https" if settings.allow_http else "https only"
    allow = ", ".join(settings.allow) or "none"
    deny = ", ".join(settings.deny) or "none"
    return (
        f"remote MCP servers (server_url): on, {scheme}, public addresses only; "
        f"allowlist: {allow}; denylist: {deny}"
    )
