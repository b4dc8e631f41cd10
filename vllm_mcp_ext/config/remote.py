"""Operator settings for remote MCP servers (``server_url`` in a request).

They come from the ``remoteMcp`` section of the ``--tool-server`` mcp.json file and from
``VLLM_MCP_REMOTE_*`` environment variables; an environment variable wins over the file.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vllm_mcp_ext.errors import ConfigError

# file key -> (environment variable, kind)
_FIELDS: dict[str, tuple[str, str]] = {
    "enabled": ("VLLM_MCP_REMOTE", "bool"),
    "allowHttp": ("VLLM_MCP_REMOTE_ALLOW_HTTP", "bool"),
    "allow": ("VLLM_MCP_REMOTE_ALLOW", "list"),
    "deny": ("VLLM_MCP_REMOTE_DENY", "list"),
    "hosts": ("VLLM_MCP_REMOTE_HOSTS", "map"),
    "connectTimeout": ("VLLM_MCP_REMOTE_CONNECT_TIMEOUT", "number"),
    "listTimeout": ("VLLM_MCP_REMOTE_LIST_TIMEOUT", "number"),
    "callTimeout": ("VLLM_MCP_REMOTE_CALL_TIMEOUT", "number"),
    "maxResponseBytes": ("VLLM_MCP_REMOTE_MAX_RESPONSE_BYTES", "int"),
    "maxConcurrentCalls": ("VLLM_MCP_REMOTE_MAX_CONCURRENT_CALLS", "int"),
    "maxServersPerRequest": ("VLLM_MCP_REMOTE_MAX_SERVERS", "int"),
    "idleTimeout": ("VLLM_MCP_REMOTE_IDLE_TIMEOUT", "number"),
    "maxPooledSessions": ("VLLM_MCP_REMOTE_MAX_POOLED", "int"),
}
_ATTRS = {
    "enabled": "enabled",
    "allowHttp": "allow_http",
    "allow": "allow",
    "deny": "deny",
    "hosts": "hosts",
    "connectTimeout": "connect_timeout",
    "listTimeout": "list_timeout",
    "callTimeout": "call_timeout",
    "maxResponseBytes": "max_response_bytes",
    "maxConcurrentCalls": "max_concurrent_calls",
    "maxServersPerRequest": "max_servers_per_request",
    "idleTimeout": "idle_timeout",
    "maxPooledSessions": "max_pooled_sessions",
}


@dataclass(frozen=True)
class RemoteSettings:
    enabled: bool = True  # remote mode: an mcp tool may name a server_url
    allow_http: bool = False  # plain http for hosts the allowlist does not name
    allow: tuple[str, ...] = ()  # hosts, .suffixes, host:port, CIDRs that skip the default rules
    deny: tuple[str, ...] = ()  # the same forms, always rejected (wins over allow)
    hosts: Mapping[str, str] = field(default_factory=dict)  # static name -> IP answers, still checked
    connect_timeout: float = 10.0  # seconds to connect and initialize
    list_timeout: float = 10.0  # seconds for tools/list
    call_timeout: float = 60.0  # seconds for one tools/call
    max_response_bytes: int = 8 * 1024 * 1024  # one HTTP response body (or SSE event) from a server
    max_concurrent_calls: int = 8  # tools/call in flight per remote server URL
    max_servers_per_request: int = 8
    idle_timeout: float = 30.0  # seconds an unused pooled session stays open
    max_pooled_sessions: int = 64

    @classmethod
    def load(
        cls, section: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> RemoteSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        section = section or {}
        unknown = sorted(set(section) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"remoteMcp: unknown field {unknown[0]!r} (allowed: {sorted(_FIELDS)})")
        for key, (var, kind) in _FIELDS.items():
            if key in section:
                values[_ATTRS[key]] = _from_file(key, section[key], kind)
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[_ATTRS[key]] = _from_env(var, raw, kind)
        return cls(**values)


def _from_file(key: str, value: Any, kind: str) -> Any:
    where = f"remoteMcp: field {key!r}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    if kind == "map":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{where} must be an object of host -> IP address")
        return _addresses(where, {k.lower(): v for k, v in value.items()})
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where} must be a positive number")
    if kind == "int" and not isinstance(value, int):
        raise ConfigError(f"{where} must be a positive integer")
    return value


def _from_env(var: str, raw: str, kind: str) -> Any:
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "on", "yes"):
            return True
        if lowered in ("0", "false", "off", "no"):
            return False
        raise ConfigError(f"{var}={raw!r} must be on or off")
    if kind == "list":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "map":
        pairs = [part.strip() for part in raw.split(",") if part.strip()]
        if not all("=" in p for p in pairs):
            raise ConfigError(f"{var} must be comma-separated host=IP pairs")
        return _addresses(var, {k.strip().lower(): v.strip() for k, v in (p.split("=", 1) for p in pairs)})
    try:
        value = float(raw) if kind == "number" else int(raw)
    except ValueError:
        raise ConfigError(
            f"{var}={raw!r} is not a {'number' if kind == 'number' else 'whole number'}"
        ) from None
    if value <= 0:
        raise ConfigError(f"{var} must be positive, got {raw!r}")
    return value


def _addresses(where: str, hosts: dict[str, str]) -> dict[str, str]:
    for name, address in hosts.items():
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"{where}: {name!r} must map to an IP address, got {address!r}") from None
    return hosts


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
