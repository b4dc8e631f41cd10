"""Tool sources (what one is: `types.source.ToolSource`): the one MCP session (`session`) over
the transports (`transports`), configured servers kept open (`connection`, `registry`), remote
servers a request names (`remote`), every configured server as one (`gateway`), and a request's
sources (`scope`)."""

from vllm_mcp_ext.servers.connection import ServerConnection, ServerStatus
from vllm_mcp_ext.servers.registry import ToolServerRegistry
from vllm_mcp_ext.servers.scope import RequestSources
from vllm_mcp_ext.servers.session import McpSession
from vllm_mcp_ext.types.source import CallFailed, CallOutcome, ServerUnavailable, ToolSource

__all__ = [
    "CallFailed",
    "CallOutcome",
    "McpSession",
    "RequestSources",
    "ServerConnection",
    "ServerStatus",
    "ServerUnavailable",
    "ToolServerRegistry",
    "ToolSource",
]
