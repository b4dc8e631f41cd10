"""JSON from a client (a request body) or from the model (a tool call's arguments), parsed with a
bound on its nesting: past `MAX_JSON_DEPTH` levels it is refused (a 400 for a request, a failed
call for arguments) instead of reaching code that recurses over it. The bound is one of the fixed
ones `config.limits` lists (it is defined here: this helper sits below config)."""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64  # nesting levels of objects and arrays in a request body or tool arguments


class TooDeep(ValueError):
    """JSON nested deeper than `MAX_JSON_DEPTH`."""


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
