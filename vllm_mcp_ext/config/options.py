"""Operator values from one section of the tool-server file and from ``VLLM_MCP_*`` environment
variables (a set variable wins over the file), checked once at start: a bad value is a
`ConfigError` that names the file key or the variable.

A settings dataclass says, per field, where its value comes from with `option`; `load` reads
them all. `Limits`, `RemoteSettings` and `Settings` are loaded this way, so each name, default
and check is written once, beside the field it fills.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from vllm_mcp_ext.errors import ConfigError

Kind = Literal["bool", "list", "map", "number", "int", "text"]
T = TypeVar("T")


def option(default: Any, *, env: str, kind: Kind, key: str | None = None) -> Any:
    """A dataclass field set by the environment variable ``env`` and, with ``key``, by that
    key of the file's section. ``kind`` says how a value is read and checked."""
    metadata = {"env": env, "key": key, "kind": kind}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def load(
    cls: type[T], section_name: str, section: Mapping[str, Any] | None, env: Mapping[str, str] | None
) -> T:
    """An instance of the dataclass ``cls`` from ``section`` (the file's, may be None) and ``env``
    (default: the process environment). Raises `ConfigError`."""
    env = os.environ if env is None else env
    section = section or {}
    fields = [f for f in dataclasses.fields(cls) if "env" in f.metadata]  # type: ignore[arg-type]
    keys = sorted(f.metadata["key"] for f in fields if f.metadata["key"])
    unknown = sorted(set(section) - set(keys))
    if unknown:
        raise ConfigError(f"{section_name}: unknown field {unknown[0]!r} (allowed: {keys})")
    values: dict[str, Any] = {}
    for f in fields:
        key, var, kind = f.metadata["key"], f.metadata["env"], f.metadata["kind"]
        if key in section:
            values[f.name] = _from_file(f"{section_name}: field {key!r}", section[key], kind)
        raw = env.get(var)
        if raw is not None and raw.strip() != "":
            values[f.name] = _from_env(var, raw, kind)
    return cls(**values)


def names(cls: type[Any]) -> dict[str, tuple[str | None, str]]:
    """Field name -> (file key, environment variable), for docs and error messages."""
    return {
        f.name: (f.metadata["key"], f.metadata["env"]) for f in dataclasses.fields(cls) if "env" in f.metadata
    }


def _from_file(where: str, value: Any, kind: Kind) -> Any:
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
    if kind == "text":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        return value
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError(f"{where} must be a positive integer")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where} must be a positive number")
    return value


def _from_env(var: str, raw: str, kind: Kind) -> Any:
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
    if kind == "text":
        return raw
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
