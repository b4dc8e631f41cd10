"""``--tool-server`` forms.

vLLM's own forms keep their meaning: ``demo`` (gpt-oss built-in tools, left to vLLM) and
``host:port`` (an MCP server over SSE at ``http://host:port/sse``, labelled by the name the server
gives itself). Added here:

* a path to an ``mcp.json`` as Claude Desktop and Cursor write it::

      {"mcpServers": {"calc": {"command": "python", "args": ["calc.py"], "env": {}, "cwd": "."},
                      "notes": {"url": "http://127.0.0.1:8001/mcp", "headers": {...}}}}

* URLs, comma separated: ``http(s)://host/mcp`` (streamable HTTP) or ``.../sse`` (SSE), optionally
  labelled ``label=URL``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from vllm_mcp_ext.config.client_features import DEFAULT as DEFAULT_FEATURES
from vllm_mcp_ext.config.client_features import FIELDS as FEATURE_FIELDS
from vllm_mcp_ext.config.client_features import ClientFeatures, client_features
from vllm_mcp_ext.config.oauth import OAuthConfig, parse_oauth
from vllm_mcp_ext.config.policy import ApprovalRules, Policy, parse_approvals, parse_policy
from vllm_mcp_ext.errors import ConfigError

TransportKind = Literal["stdio", "streamable_http", "sse"]

_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.-]+:\d+$")
# The one map of the names a user may give a transport (mcp.json, or a request's mcp tool).
TRANSPORT_ALIASES: dict[str, TransportKind] = {
    "sse": "sse",
    "http": "streamable_http",
    "streamable_http": "streamable_http",
    "streamable-http": "streamable_http",
    "streamableHttp": "streamable_http",
}


@dataclass(frozen=True)
class StdioServerSpec:
    label: str
    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    transport: TransportKind = "stdio"
    features: ClientFeatures = DEFAULT_FEATURES  # elicitation and sampling (config.client_features)
    approvals: ApprovalRules | None = None  # the operator's rules for this server (config.policy)


@dataclass(frozen=True)
class HttpServerSpec:
    """A server reached over HTTP. ``label`` is None when the server's own name is to be used."""

    url: str
    transport: TransportKind
    label: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    oauth: OAuthConfig | None = None  # tokens from an authorization server, see config.oauth
    features: ClientFeatures = DEFAULT_FEATURES  # elicitation and sampling (config.client_features)
    approvals: ApprovalRules | None = None  # the operator's rules for this server (config.policy)

    @property
    def provisional_label(self) -> str:
        """What the server is called before it has told us its name."""
        if self.label:
            return self.label
        parsed = urlparse(self.url)  # host[:port]: never the URL's userinfo
        try:
            return f"{parsed.hostname}:{parsed.port}" if parsed.port else (parsed.hostname or "server")
        except ValueError:
            return parsed.hostname or "server"


ServerSpec = StdioServerSpec | HttpServerSpec


@dataclass(frozen=True)
class ToolServerConfig:
    """What ``--tool-server`` asked for: our servers, and the part vLLM itself handles."""

    servers: tuple[ServerSpec, ...] = ()
    vllm_native: str | None = None  # "demo" and/or host:port entries, for vLLM's own init
    remote: dict[str, Any] | None = None  # the mcp.json "remoteMcp" section, see config.remote
    permissions: dict[str, Any] | None = None  # the mcp.json "permissions" section, see access
    limits: dict[str, Any] | None = None  # the mcp.json "limits" section, see config.limits
    policy: Policy = field(default_factory=Policy)  # the mcp.json "policy" section, see config.policy


def parse_tool_server_arg(value: str | None) -> ToolServerConfig:
    """Parse the raw ``--tool-server`` string. Raises `ConfigError` naming file, label and field."""
    if not value or not value.strip():
        return ToolServerConfig()
    servers: list[ServerSpec] = []
    native: list[str] = []
    remote: dict[str, Any] | None = None
    permissions: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    policy = Policy()
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry == "demo":
            native.append(entry)
        elif _HOST_PORT.match(entry):
            native.append(entry)
            servers.append(HttpServerSpec(url=f"http://{entry}/sse", transport="sse"))
        elif _looks_like_url(entry):
            servers.append(_url_entry(entry))
        else:
            servers.extend(load_mcp_json(Path(entry)))
            remote = _remote_section(Path(entry)) or remote
            data = _read_json(Path(entry))
            permissions = _section_of(data, Path(entry), "permissions") or permissions
            limits = _section_of(data, Path(entry), "limits") or limits
            if isinstance(data, Mapping) and "policy" in data:
                policy = parse_policy(data["policy"], f"{entry}: policy")
    _check_unique_labels(servers)
    return ToolServerConfig(
        servers=_with_rules(servers, policy),
        vllm_native=",".join(native) or None,
        remote=remote,
        permissions=permissions,
        limits=limits,
        policy=policy,
    )


def _looks_like_url(entry: str) -> bool:
    _, _, rest = entry.partition("=") if "=" in entry.split("://", 1)[0] else ("", "", entry)
    return rest.startswith(("http://", "https://"))


def _url_entry(entry: str) -> HttpServerSpec:
    label: str | None = None
    url = entry
    if "=" in entry.split("://", 1)[0]:
        label, url = entry.split("=", 1)
        _check_label(label, where="--tool-server")
    return HttpServerSpec(url=url, transport=_transport_from_url(url), label=label)


def _transport_from_url(url: str) -> TransportKind:
    return "sse" if urlparse(url).path.rstrip("/").endswith("/sse") else "streamable_http"


def tool_server_config(value: str | os.PathLike[str] | Mapping[str, Any] | None) -> ToolServerConfig:
    """The Python API's ``tool_server``: the ``--tool-server`` string, an ``mcp.json`` path, or
    the parsed ``mcp.json`` content as a dict (relative ``cwd`` values then resolve against the
    current directory)."""
    if value is None or isinstance(value, str):
        return parse_tool_server_arg(value)
    if isinstance(value, os.PathLike):
        return parse_tool_server_arg(os.fspath(value))
    if not isinstance(value, Mapping):
        raise ConfigError("tool_server must be a --tool-server string, an mcp.json path or a dict")
    where = Path("tool_server")
    servers = _servers_of(value, where, Path.cwd())
    _check_unique_labels(servers)
    policy = parse_policy(value.get("policy"), "tool_server: policy")
    return ToolServerConfig(
        servers=_with_rules(servers, policy),
        remote=_remote_of(value, where),
        permissions=_section_of(value, where, "permissions"),
        limits=_section_of(value, where, "limits"),
        policy=policy,
    )


def _with_rules(servers: list[ServerSpec], policy: Policy) -> tuple[ServerSpec, ...]:
    """Each server's approval rules: its own over the global ones, category by category."""
    if policy.approvals is None:
        return tuple(servers)
    return tuple(replace(s, approvals=policy.approvals.merged(s.approvals)) for s in servers)


def load_mcp_json(path: Path) -> list[ServerSpec]:
    """Read an ``mcp.json`` file. Relative ``cwd`` values are resolved against the file's folder."""
    return _servers_of(_read_json(path), path, path.parent)


def _servers_of(data: Any, where: Path, base: Path) -> list[ServerSpec]:
    servers = data.get("mcpServers") if isinstance(data, Mapping) else None
    if not isinstance(servers, Mapping):
        raise ConfigError(f"{where}: field 'mcpServers' must be an object of label -> server")
    return [_server_entry(where, base, label, entry) for label, entry in servers.items()]


def _remote_section(path: Path) -> dict[str, Any] | None:
    return _remote_of(_read_json(path), path)


def _remote_of(data: Any, where: Path) -> dict[str, Any] | None:
    """The optional ``remoteMcp`` section: policy and limits for ``server_url`` requests."""
    section = data.get("remoteMcp") if isinstance(data, Mapping) else None
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{where}: field 'remoteMcp' must be an object")
    return section


def _section_of(data: Any, where: Path, name: str) -> dict[str, Any] | None:
    """An optional object section of the file: ``permissions`` (API key -> servers and tools, see
    access.permissions) or ``limits`` (see config.limits)."""
    section = data.get(name) if isinstance(data, Mapping) else None
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{where}: field {name!r} must be an object")
    return section


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(
            f"--tool-server: {str(path)!r} is not 'demo', host:port, a URL, or an existing file"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    return data


def _server_entry(path: Path, base: Path, label: str, entry: Any) -> ServerSpec:
    where = f"{path}: server {label!r}"
    _check_label(label, where=str(path))
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object with 'command' or 'url'")
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        raise ConfigError(f"{where}: needs exactly one of field 'command' (stdio) or 'url'")
    if has_command:
        return _stdio_entry(base, label, entry, where)
    return _http_entry(label, entry, where)


def _stdio_entry(base: Path, label: str, entry: dict[str, Any], where: str) -> StdioServerSpec:
    _check_keys(
        entry, {"command", "args", "env", "cwd", "type", "transport", "approvals", *FEATURE_FIELDS}, where
    )
    command = _typed(entry, "command", str, where)
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{where}: field 'args' must be a list of strings")
    env = _string_map(entry, "env", where)
    cwd = entry.get("cwd")
    if cwd is not None:
        cwd = str((base / _typed(entry, "cwd", str, where)).resolve())
    return StdioServerSpec(
        label=label,
        command=command,
        args=tuple(args),
        env=env,
        cwd=cwd,
        features=client_features(entry, where),
        approvals=parse_approvals(entry.get("approvals"), f"{where}: approvals"),
    )


def _http_entry(label: str, entry: dict[str, Any], where: str) -> HttpServerSpec:
    _check_keys(entry, {"url", "headers", "transport", "type", "oauth", "approvals", *FEATURE_FIELDS}, where)
    url = _typed(entry, "url", str, where)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: field 'url' must start with http:// or https://")
    hint = entry.get("transport", entry.get("type"))
    if hint is None:
        transport = _transport_from_url(url)
    elif hint in TRANSPORT_ALIASES:
        transport = TRANSPORT_ALIASES[hint]
    else:
        raise ConfigError(f"{where}: field 'transport' must be one of {sorted(set(TRANSPORT_ALIASES))}")
    headers = _string_map(entry, "headers", where)
    oauth = parse_oauth(entry["oauth"], where) if "oauth" in entry else None
    if oauth is not None and any(k.lower() == "authorization" for k in headers):
        raise ConfigError(f"{where}: 'oauth' and an 'Authorization' header exclude each other")
    return HttpServerSpec(
        url=url,
        transport=transport,
        label=label,
        headers=headers,
        oauth=oauth,
        features=client_features(entry, where),
        approvals=parse_approvals(entry.get("approvals"), f"{where}: approvals"),
    )


def _typed(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ConfigError(f"{where}: field {key!r} must be a non-empty {kind.__name__}")
    return value


def _string_map(entry: dict[str, Any], key: str, where: str) -> dict[str, str]:
    value = entry.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{where}: field {key!r} must be an object of strings")
    return dict(value)


def _check_keys(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (allowed: {sorted(allowed)})")


def _check_label(label: str, *, where: str) -> None:
    if not _LABEL.match(label):
        raise ConfigError(f"{where}: server label {label!r} must be letters, digits, '_', '-' or '.'")


def _check_unique_labels(servers: list[ServerSpec]) -> None:
    seen: set[str] = set()
    for spec in servers:
        if spec.label is None:
            continue
        if spec.label in seen:
            raise ConfigError(f"--tool-server: server label {spec.label!r} is configured twice")
        seen.add(spec.label)
