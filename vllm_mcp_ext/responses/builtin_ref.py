"""A configured (``--tool-server``) server named the way clients that insist on a URL or a
connector can name it.

Built-in mode is an ``mcp`` tool whose ``server_label`` is a configured server's label. Some
clients cannot send that: the Vercel AI SDK's ``openai.tools.mcp`` requires ``serverUrl``,
``connectorId`` or ``tunnelId``. Either of these names a configured server too:

- ``"server_url": "tool-server://<label>"``
- ``"connector_id": "<label>"`` (OpenAI's own connectors are named ``connector_*``)

The tool's ``server_label`` is then only the name items and ``tool_choice`` use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vllm_mcp_ext.errors import InvalidRequest

SCHEME = "tool-server://"
_OPENAI_CONNECTOR_PREFIX = "connector_"


def configured_label(
    raw: dict[str, Any], param: str, labels: Sequence[str], shown: Sequence[str] | None = None
) -> str | None:
    """The configured server the tool names by ``server_url`` or ``connector_id``; None when it
    names none that way (built-in by ``server_label``, a remote URL, or an OpenAI connector). An
    unknown name's error lists ``shown`` (the servers the caller may use; default: all)."""
    shown = labels if shown is None else shown
    url, connector = raw.get("server_url"), raw.get("connector_id")
    if isinstance(url, str) and url.startswith(SCHEME):
        return _known(url[len(SCHEME) :].strip("/"), labels, shown, f"{param}.server_url")
    if isinstance(connector, str) and not connector.startswith(_OPENAI_CONNECTOR_PREFIX):
        return _known(connector, labels, shown, f"{param}.connector_id")
    return None


def without_reference(raw: dict[str, Any]) -> dict[str, Any]:
    """The tool without the fields that named the server (they are not OpenAI's values)."""
    return {k: v for k, v in raw.items() if k not in ("server_url", "connector_id")}


def _known(label: str, labels: Sequence[str], shown: Sequence[str], param: str) -> str:
    """``label`` among the configured ``labels``; the error names only ``shown`` (a server the
    caller may not use is refused later, by name, as one named by ``server_label`` is)."""
    if label not in labels:
        configured = ", ".join(shown) or "none"
        raise InvalidRequest(
            f"{label!r} names no configured MCP server; configured MCP servers: {configured}",
            param=param,
            code="unknown_server_label",
        )
    return label
