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


def configured_label(raw: dict[str, Any], param: str, labels: Sequence[str]) -> str | None:
    """The configured server the tool names by ``server_url`` or ``connector_id``; None when it
    names none that way (built-in by ``server_label``, a remote URL, or an OpenAI connector)."""
    url, connector = raw.get("server_url"), raw.get("connector_id")
    if isinstance(url, str) and url.startswith(SCHEME):
        return _known(url[len(SCHEME) :].strip("/"), labels, f"{param}.server_url")
    if isinstance(connector, str) and not connector.startswith(_OPENAI_CONNECTOR_PREFIX):
        return _known(connector, labels, f"{param}.connector_id")
    return None


def without_reference(raw: dict[str, Any]) -> dict[str, Any]:
    """The tool without the fields that named the server (they are not OpenAI's values)."""
    return {k: v for k, v in raw.items() if k not in ("server_url", "connector_id")}


def _known(label: str, labels: Sequence[str], param: str) -> str:
    """``labels``: the configured servers the caller may use; no other is named to it."""
    if label not in labels:
        configured = ", ".join(labels) or "none"
        raise InvalidRequest(
            f"{label!r} names no configured MCP server; configured MCP servers: {configured}",
            param=param,
            code="unknown_server_label",
        )
    return label
