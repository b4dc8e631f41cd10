"""The aggregate tool list: every configured server's tools a caller may use, each named
``<server label>__<tool name>``, and calls routed back to the server by that name.

Clashes: labels are letters, digits, ``_``, ``-`` and ``.``, so two servers can only produce the
same prefixed name when a label ends in ``_`` or a tool name starts with one (``a_`` + ``_b`` and
``a`` + ``__b``). Names are resolved through the list itself, never by splitting at the
separator, and a name already taken is kept by the server configured first; the other tool is
left out of the list (logged once).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from mcp import types

from vllm_mcp_ext.access import Grant
from vllm_mcp_ext.servers import ServerConnection, ServerUnavailable, ToolServerRegistry
from vllm_mcp_ext.servers.session import Progress
from vllm_mcp_ext.types.source import CallFailed, Code

logger = logging.getLogger(__name__)

SEPARATOR = "__"
PATH = "/mcp"
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
_warned: set[str] = set()


def names_gateway(url: str, port: int | None = None) -> bool:
    """Whether a request's ``server_url`` names this server's own ``/mcp``: the bare path, or an
    ``http(s)`` URL of it on a loopback host (at the API server's port, when it is known). Such a
    tool is resolved in process; nothing is fetched."""
    parsed = urlparse(url)
    if parsed.path.rstrip("/") != PATH or parsed.query or parsed.fragment:
        return False
    if not parsed.scheme and not parsed.netloc:
        return True
    if parsed.scheme not in ("http", "https") or parsed.hostname not in _LOOPBACK:
        return False
    default = 443 if parsed.scheme == "https" else 80
    return port is None or (parsed.port or default) == port


@dataclass(frozen=True)
class Entry:
    tool: types.Tool  # as listed through the gateway: the prefixed name
    connection: ServerConnection
    name: str  # the server's own name for the tool


class Catalog:
    """The configured servers as one, as ``grant`` allows them."""

    def __init__(self, registry: ToolServerRegistry, grant: Grant):
        self.registry = registry
        self.grant = grant

    async def entries(self) -> dict[str, Entry]:
        """Prefixed name -> entry, in configured order; unavailable servers are left out."""
        connections = [c for c in self.registry.connections if self.grant.allows_server(c.label)]
        listed = await asyncio.gather(*(_tools_of(c) for c in connections))
        entries: dict[str, Entry] = {}
        for conn, tools in zip(connections, listed, strict=True):
            for tool in tools:
                if not self.grant.allows_tool(conn.label, tool.name):
                    continue
                name = f"{conn.label}{SEPARATOR}{tool.name}"
                if name in entries:
                    _warn_clash(name, conn.label, entries[name].connection.label)
                    continue
                entries[name] = Entry(tool.model_copy(update={"name": name}), conn, tool.name)
        return entries

    async def tools(self) -> tuple[types.Tool, ...]:
        return tuple(e.tool for e in (await self.entries()).values())

    async def call_tool(
        self, name: str, arguments: dict[str, Any], progress: Progress | None = None
    ) -> types.CallToolResult:
        """Call a prefixed tool on its server; raises `CallFailed` for a name not listed."""
        entry = (await self.entries()).get(name)
        if entry is None:
            raise CallFailed(Code.METHOD_NOT_FOUND, f"Unknown tool {name!r}")
        return await entry.connection.call_tool(entry.name, arguments, progress=progress)


async def _tools_of(conn: ServerConnection) -> tuple[types.Tool, ...]:
    try:
        return await conn.current_tools()
    except ServerUnavailable as exc:
        logger.info("/mcp: server %r left out: %s", conn.label, exc.message)
        return ()


def _warn_clash(name: str, label: str, kept: str) -> None:
    if name not in _warned:
        _warned.add(name)
        logger.warning("/mcp: %r of server %r clashes with server %r's; left out", name, label, kept)
