"""Server-side MCP tool calling for vLLM's OpenAI-compatible server.

Enable with ``VLLM_PLUGINS=vllm_mcp_ext vllm serve MODEL --tool-server mcp.json ...``, or run the
same loop in your own program with `McpEngine` (docs/python-api.md).
How a request flows, folder by folder::

    config/   --tool-server value -> typed server specs
    servers/  one long-lived MCP session per configured server (stdio, HTTP, SSE)
    api/      the vLLM endpoint plugin: routes, request validation, error mapping
    loop/     the agent loop: tool set, MCP calls, turn after turn
    engine/   render a turn with the chat template, generate, parse with vLLM's parsers
    events/   Responses stream events and the final response object
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names, imported on first use: `import vllm_mcp_ext` alone does not import vLLM.
_EXPORTS = {
    "McpEngine": "vllm_mcp_ext.python_api",
}
__all__ = ["McpEngine"]

if TYPE_CHECKING:
    from vllm_mcp_ext.python_api import McpEngine


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vllm_mcp_ext' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
