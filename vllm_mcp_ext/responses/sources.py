"""Which tool source a request's ``mcp`` tool names: the one place a tool-source kind is chosen.

The kinds, in the order they are tried:

* the API server's own ``/mcp`` (``server_url`` naming it): every configured server the caller
  may use, in process (`servers.gateway`);
* a configured server named by ``server_url: "tool-server://<label>"`` or ``connector_id``
  (`builtin_ref`), or by ``server_label`` alone (`servers.ToolServerRegistry`);
* a remote server at ``server_url``, opened for this request (`servers.remote`).

A new kind is a `types.source.ToolSource` in ``servers/`` and its branch here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openai.types.responses.tool import Mcp
from pydantic import TypeAdapter, ValidationError

from vllm_mcp_ext.access import Grant
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.responses.builtin_ref import configured_label, without_reference
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.gateway import Catalog, GatewaySource, names_gateway
from vllm_mcp_ext.servers.remote import RemoteMcp
from vllm_mcp_ext.types.source import ToolSource

_MCP = TypeAdapter(Mcp)
# The ``/mcp`` gateway as a request's tool source: given the raw tool, its source when its
# ``server_url`` names this server's own ``/mcp`` (else None).
GatewayResolver = Callable[[dict[str, Any]], ToolSource | None]


def gateway_resolver(registry: ToolServerRegistry, grant: Grant, own_port: int | None) -> GatewayResolver:
    """The gateway as the caller with ``grant`` sees it; ``own_port``: the API server's port
    (``http://localhost:<it>/mcp`` is ours)."""

    def gateway(raw: dict[str, Any]) -> ToolSource | None:
        url = raw.get("server_url")
        if not isinstance(url, str) or not names_gateway(url, own_port):
            return None
        return GatewaySource(str(raw.get("server_label")), Catalog(registry, grant))

    return gateway


def mcp_source(
    raw: dict[str, Any],
    param: str,
    registry: ToolServerRegistry,
    remote: RemoteMcp | None = None,
    gateway: GatewayResolver | None = None,
    visible: Callable[[str], bool] = lambda label: True,
) -> tuple[Mcp, ToolSource]:
    """The request's ``mcp`` tool ``raw`` (at ``param``), validated, and the source it names.
    An error names only the configured servers ``visible`` to the caller (its key's grant)."""
    own = gateway(raw) if gateway is not None else None
    shown = [label for label in registry.labels if visible(label)]
    named = configured_label(raw, param, registry.labels, shown) if own is None else None
    try:
        tool = _MCP.validate_python(raw if named is None and own is None else without_reference(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{param}.{where}: {err['msg']}", param=f"{param}.{where}") from None
    if own is not None:  # this server's own /mcp: every configured server, in process
        return tool.model_copy(update={"server_url": raw["server_url"]}), own
    if named is not None:
        source = registry.get(named)
        assert source is not None  # configured_label checked it
        # a tool-server:// URL is echoed; a connector_id is not (OpenAI's type allows only its own names)
        return tool.model_copy(update={k: raw[k] for k in ("server_url",) if k in raw}), source
    for name in ("connector_id", "tunnel_id"):
        if getattr(tool, name, None):
            raise Unsupported(
                f"{name!r} is OpenAI-hosted only: use server_url, or name a server configured "
                "with --tool-server by its server_label",
                param=f"{param}.{name}",
            )
    if tool.server_url:
        if remote is None:
            raise Unsupported(
                "remote MCP servers (server_url) are not available", param=f"{param}.server_url"
            )
        remote_source = remote.source(
            tool.server_label, tool.server_url, tool.headers, tool.authorization, raw.get("transport"), param
        )
        return tool, remote_source
    source = registry.get(tool.server_label)
    if source is None:
        configured = ", ".join(shown) or "none"
        raise InvalidRequest(
            f"unknown server_label {tool.server_label!r}; configured MCP servers: {configured}",
            param=f"{param}.server_label",
            code="unknown_server_label",
        )
    return tool, source
