"""Bounds on what a request or a tool call controls, checked before any work is done on it.

JSON from a client (a request body) or from the model (a tool call's arguments) is parsed once
here: past `MAX_JSON_DEPTH` levels of nesting it is refused (a 400 for a request, a failed call
for arguments) instead of reaching code that recurses over it; a body past the byte limit is a 413.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

MAX_JSON_DEPTH = 64  # nesting levels of objects and arrays in a request body or tool arguments
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024  # one POST /v1/responses body
DEFAULT_MAX_TOOLS = 128  # entries of a request's ``tools`` (function tools and MCP servers)
DEFAULT_MAX_CALLS_PER_SERVER = 16  # tools/call in flight at once per configured MCP server


class TooDeep(ValueError):
    """JSON nested deeper than `MAX_JSON_DEPTH`."""


# the tool-server file's "limits" section key -> its environment variable (which wins)
FILE_KEYS = {
    "maxRequestBytes": "VLLM_MCP_MAX_REQUEST_BYTES",
    "maxTools": "VLLM_MCP_MAX_TOOLS",
    "maxCallsPerServer": "VLLM_MCP_MAX_CALLS_PER_SERVER",
}
_from_file: dict[str, int] = {}  # environment variable -> the file's value


def configure(section: Mapping[str, Any] | None) -> None:
    """Take the ``limits`` section of the tool-server file (at start-up). Raises `ConfigError`."""
    from vllm_mcp_ext.errors import ConfigError

    _from_file.clear()
    for key, value in (section or {}).items():
        if key not in FILE_KEYS:
            raise ConfigError(f"limits: unknown field {key!r} (allowed: {sorted(FILE_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"limits: field {key!r} must be a positive integer")
        _from_file[FILE_KEYS[key]] = value


def _env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get(name, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return _from_file.get(name, default)


def max_request_bytes(env: Mapping[str, str] | None = None) -> int:
    return _env_int("VLLM_MCP_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, env)


def max_calls_per_server(env: Mapping[str, str] | None = None) -> int:
    return _env_int("VLLM_MCP_MAX_CALLS_PER_SERVER", DEFAULT_MAX_CALLS_PER_SERVER, env)


def check_tool_count(count: int) -> None:
    """A request's ``tools`` within ``VLLM_MCP_MAX_TOOLS`` entries, else a 400."""
    cap = _env_int("VLLM_MCP_MAX_TOOLS", DEFAULT_MAX_TOOLS)
    if count > cap:
        from vllm_mcp_ext.errors import InvalidRequest

        raise InvalidRequest(f"'tools' has {count} entries; at most {cap} are accepted", param="tools")


def loads_bounded(text: str | bytes) -> Any:
    """``json.loads`` that refuses nesting past `MAX_JSON_DEPTH` (raises `TooDeep`); other
    errors are ``json.JSONDecodeError`` / ``UnicodeDecodeError`` as usual. Linear: the C parser
    stops at the interpreter's recursion limit, and the depth check walks level by level."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    check_depth(value)
    return value


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise `TooDeep` when ``value`` nests objects/arrays more than ``limit`` levels."""
    level = [value]
    depth = 0
    while level:
        below: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                below.extend(v for v in item if isinstance(v, dict | list))
        if isinstance(value, dict | list) or depth:
            depth += 1
        if depth > limit:
            raise TooDeep(f"JSON nested more than {limit} levels deep")
        level = below
