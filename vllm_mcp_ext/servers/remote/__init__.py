"""Remote MCP servers named per request by ``server_url``: URL policy, pinned HTTP, pooled
sessions, secret redaction. `RemoteMcp` is the entry point; see docs/remote-mcp.md."""

from vllm_mcp_ext.servers.remote.policy import PolicyRejected, Rule, UrlPolicy
from vllm_mcp_ext.servers.remote.service import RemoteMcp
from vllm_mcp_ext.servers.remote.source import RemoteSource

__all__ = ["PolicyRejected", "RemoteMcp", "RemoteSource", "Rule", "UrlPolicy"]
