"""Every configured server as one tool source: the aggregate tool list (`catalog`), served at
``/mcp`` by the door `api.mcp`, and a request's ``mcp`` tool whose ``server_url`` is that path
(`source`)."""

from vllm_mcp_ext.servers.gateway.catalog import SEPARATOR, Catalog, names_gateway
from vllm_mcp_ext.servers.gateway.source import GatewaySource

__all__ = ["SEPARATOR", "Catalog", "GatewaySource", "names_gateway"]
