"""`Permissions`: which configured servers and tools each API key may use.

An optional ``permissions`` section of the tool-server file (``mcp.json``) maps a key, or
``sha256:<hex>`` of it, to a grant; ``"*"`` is the grant of every caller not listed (and of
every request when the server runs without ``--api-key``)::

    "permissions": {
      "sha256:4f2a...": {"servers": ["calc", "notes"]},
      "sk-team-b":      {"servers": {"calc": ["add"], "notes": "*"}},
      "*":              {"servers": []}
    }

Without the section everyone may use everything. With it, a caller with no grant (not listed,
no ``"*"``) may use no server. A forbidden server label is an error naming it (403); a forbidden
tool of an allowed server is never listed and never called.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vllm_mcp_ext.access.caller import Caller, hash_key
from vllm_mcp_ext.errors import ConfigError, Forbidden

_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
ALL_TOOLS = None  # a server granted with every tool


@dataclass(frozen=True)
class Grant:
    """Server label -> the tool names allowed (`ALL_TOOLS`: every tool). ``everything``: no
    restriction at all (no permissions configured)."""

    servers: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    everything: bool = False

    def allows_server(self, label: str) -> bool:
        return self.everything or label in self.servers

    def allows_tool(self, label: str, tool: str) -> bool:
        if self.everything:
            return True
        if label not in self.servers:
            return False
        tools = self.servers[label]
        return tools is ALL_TOOLS or tool in tools

    def check_server(self, label: str, param: str | None = None) -> None:
        """Raise `Forbidden` naming ``label`` unless this grant allows it."""
        if not self.allows_server(label):
            raise Forbidden(
                f"this API key may not use MCP server {label!r}",
                param=param,
                code="server_not_permitted",
            )


EVERYTHING = Grant(everything=True)
NOTHING = Grant()


@dataclass(frozen=True)
class Permissions:
    """Grants by key hash; ``default`` for callers not listed. `configured` False: no section."""

    grants: Mapping[str, Grant] = field(default_factory=dict)
    default: Grant = EVERYTHING
    configured: bool = False

    @classmethod
    def load(cls, section: Any, where: str = "permissions") -> Permissions:
        """Parse the ``permissions`` section (None: no restriction); `ConfigError` when malformed."""
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise ConfigError(f"{where}: must be an object of API key -> {{'servers': ...}}")
        grants: dict[str, Grant] = {}
        default = NOTHING
        for key, entry in section.items():
            grant = _grant(entry, f"{where}[{_shown(key)}]")
            if key == "*":
                default = grant
            else:
                grants[_key_hash(key)] = grant
        return cls(grants, default, configured=True)

    def grant(self, caller: Caller) -> Grant:
        if caller.key_hash is not None and caller.key_hash in self.grants:
            return self.grants[caller.key_hash]
        return self.default


def _key_hash(key: str) -> str:
    hashed = _HASHED.match(key)
    return hashed.group(1).lower() if hashed else hash_key(key)


def _shown(key: str) -> str:
    """A key as config errors may print it: never a plain key."""
    return key if key == "*" or _HASHED.match(key) else f"sha256:{hash_key(key)[:12]}..."


def _grant(entry: Any, where: str) -> Grant:
    servers = entry.get("servers") if isinstance(entry, Mapping) else None
    if isinstance(entry, Mapping) and set(entry) - {"servers"}:
        raise ConfigError(f"{where}: unknown field {sorted(set(entry) - {'servers'})[0]!r}")
    if isinstance(servers, list) and all(isinstance(s, str) for s in servers):
        return Grant({label: ALL_TOOLS for label in servers})
    if isinstance(servers, Mapping):
        return Grant({label: _tools(tools, f"{where}.servers.{label}") for label, tools in servers.items()})
    raise ConfigError(f"{where}: field 'servers' must be a list of labels or an object of label -> tools")


def _tools(value: Any, where: str) -> frozenset[str] | None:
    if value == "*":
        return ALL_TOOLS
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return frozenset(value)
    raise ConfigError(f'{where}: must be "*" or a list of tool names')
