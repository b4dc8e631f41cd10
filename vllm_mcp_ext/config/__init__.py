"""Parse ``--tool-server`` into typed server specs."""

from vllm_mcp_ext.config.tool_servers import (
    HttpServerSpec,
    ServerSpec,
    StdioServerSpec,
    ToolServerConfig,
    parse_tool_server_arg,
    tool_server_config,
)

__all__ = [
    "HttpServerSpec",
    "ServerSpec",
    "StdioServerSpec",
    "ToolServerConfig",
    "parse_tool_server_arg",
    "tool_server_config",
]
