"""Server-side MCP tool calling for vLLM's OpenAI-compatible server.

Enable with ``VLLM_PLUGINS=vllm_mcp_ext vllm serve MODEL --tool-server mcp.json ...``.
How a request flows, folder by folder::

    config/   --tool-server value -> typed server specs
    servers/  one long-lived MCP session per configured server (stdio, HTTP, SSE)
    api/      the vLLM endpoint plugin: routes, request validation, error mapping
    loop/     the agent loop: tool set, MCP calls, turn after turn
    engine/   render a turn with the chat template, generate, parse with vLLM's parsers
    events/   Responses stream events and the final response object
"""

__version__ = "0.1.0"
