"""The tools one request offers the model, and the names the model sees for them.

MCP tools of every server in the request are offered as function tools. A tool keeps its own
name unless another server in the request (or a client function tool) has the same name; then
the model sees ``{server_label}__{name}``. Items always show the real name and label.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mcp import types
from openai.types.responses.response_output_item import McpListToolsTool
from openai.types.responses.tool import McpAllowedTools

from vllm_mcp_ext.types.request import matches_filter

_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ExposedTool:
    """An MCP tool as offered to the model."""

    exposed_name: str
    server_label: str
    tool: types.Tool

    @property
    def name(self) -> str:
        return self.tool.name

    def function_param(self) -> dict[str, Any]:
        """The chat-completions function tool the chat template renders."""
        return {
            "type": "function",
            "function": {
                "name": self.exposed_name,
                "description": self.tool.description or "",
                "parameters": canonical(self.tool.input_schema),
            },
        }


@dataclass(frozen=True)
class ServerTools:
    """The allowed tools of one server in a request."""

    server_label: str
    tools: tuple[types.Tool, ...]


class ToolSet:
    def __init__(self, tools: Sequence[ExposedTool]):
        self.tools = tuple(tools)
        self._by_exposed = {t.exposed_name: t for t in self.tools}

    @classmethod
    def build(cls, servers: Iterable[ServerTools], reserved: Iterable[str] = ()) -> ToolSet:
        servers = list(servers)
        counts = Counter(t.name for s in servers for t in s.tools)
        taken = set(reserved)
        for name in taken:
            counts[name] += 1
        suffixes: dict[str, int] = {}  # base name -> the next suffix to try: linear, however many clash
        exposed: list[ExposedTool] = []
        for server in servers:
            for tool in server.tools:
                plain = _clean(tool.name)
                name = plain if counts[tool.name] == 1 else f"{_clean(server.server_label)}__{plain}"
                name = _unique(name[:64], taken, suffixes)
                taken.add(name)
                exposed.append(ExposedTool(name, server.server_label, tool))
        return cls(exposed)

    def lookup(self, exposed_name: str) -> ExposedTool | None:
        return self._by_exposed.get(exposed_name)

    def find(self, server_label: str, name: str) -> ExposedTool | None:
        for tool in self.tools:
            if tool.server_label == server_label and tool.name == name:
                return tool
        return None

    def function_params(self) -> list[dict[str, Any]]:
        return [t.function_param() for t in self.tools]


def listed_tool(tool: types.Tool) -> McpListToolsTool:
    """A server's tool as clients see it: in `mcp_list_tools` items and `GET .../tools`."""
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return McpListToolsTool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        annotations=annotations,
    )


def filter_allowed(tools: Sequence[types.Tool], allowed: McpAllowedTools | None) -> tuple[types.Tool, ...]:
    """Apply ``allowed_tools``: a list of names, or ``{tool_names, read_only}``."""
    if allowed is None:
        return tuple(tools)
    if isinstance(allowed, list):
        names = set(allowed)
        return tuple(t for t in tools if t.name in names)
    return tuple(t for t in tools if matches_filter(t, allowed))


def tool_from_listing(listed: McpListToolsTool) -> types.Tool:
    """The MCP tool back from an `mcp_list_tools` entry (a replayed or stored listing)."""
    return types.Tool.model_validate(
        {
            "name": listed.name,
            "description": listed.description,
            "inputSchema": listed.input_schema if isinstance(listed.input_schema, dict) else {},
            "annotations": listed.annotations if isinstance(listed.annotations, dict) else None,
        }
    )


def canonical(value: Any) -> Any:
    """The schema with keys sorted at every level. Servers send the same schema with different key
    orders depending on the transport; a fixed order keeps the rendered prompt (and so the prefix
    cache) the same however the server is reached."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def _clean(name: str) -> str:
    return _NOT_NAME_CHARS.sub("_", name) or "tool"


def _unique(name: str, taken: set[str], suffixes: dict[str, int]) -> str:
    if name not in taken:
        return name
    n = suffixes.get(name, 2)
    candidate = f"{name[:57]}_{n}"
    while candidate in taken:
        n += 1
        candidate = f"{name[:57]}_{n}"
    suffixes[name] = n + 1
    return candidate
