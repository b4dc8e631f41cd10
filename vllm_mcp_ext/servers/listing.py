"""What an MCP server's tool list may hold. A server is not trusted with the size of what it
lists: every listing is checked once, when it arrives, in time linear in its size, and a listing
past a limit fails the server's listing (its `mcp_list_tools` item carries the error) instead of
reaching the loop, the prompt or the redactor. The bounds are in `config.limits`."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mcp import types

from vllm_mcp_ext.config.limits import (
    MAX_DESCRIPTION_CHARS,
    MAX_LISTED_TOOLS,
    MAX_SCHEMA_BYTES,
    MAX_TOOL_NAME_CHARS,
)


class ToolListRejected(ValueError):
    """A tool list past a limit."""


def checked_tools(tools: Sequence[types.Tool]) -> tuple[types.Tool, ...]:
    if len(tools) > MAX_LISTED_TOOLS:
        raise ToolListRejected(
            f"the server lists {len(tools)} tools; at most {MAX_LISTED_TOOLS} are accepted"
        )
    for tool in tools:
        if len(tool.name) > MAX_TOOL_NAME_CHARS:
            raise ToolListRejected(
                f"a tool name is {len(tool.name)} characters long; at most {MAX_TOOL_NAME_CHARS} are accepted"
            )
        if tool.description is not None and len(tool.description) > MAX_DESCRIPTION_CHARS:
            raise ToolListRejected(
                f"tool {tool.name!r} has a description of {len(tool.description)} characters; "
                f"at most {MAX_DESCRIPTION_CHARS} are accepted"
            )
        size = len(json.dumps(tool.input_schema, separators=(",", ":")))
        if size > MAX_SCHEMA_BYTES:
            raise ToolListRejected(
                f"tool {tool.name!r} has an input schema of {size} bytes; at most {MAX_SCHEMA_BYTES} are accepted"
            )
    return tuple(tools)
