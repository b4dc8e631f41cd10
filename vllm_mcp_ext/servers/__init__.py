"""Long-lived MCP sessions to the configured tool servers."""

from vllm_mcp_ext.servers.connection import ServerConnection, ServerStatus
from vllm_mcp_ext.servers.registry import ToolServerRegistry

__all__ = ["ServerConnection", "ServerStatus", "ToolServerRegistry"]
