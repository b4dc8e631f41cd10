"""Server-side MCP tool calling for vLLM's OpenAI-compatible server.

Enable with ``VLLM_PLUGINS=vllm_mcp_ext vllm serve MODEL --tool-server mcp.json ...``, or run the
same loop in your own program with `McpEngine` (docs/python-api.md).

Folders are layers, top to bottom; each imports only its own folder and the layers below it
(docs/architecture.md; tests/unit/test_layers.py checks)::

    api/         the doors of the API server, one module each (responses, chat, messages,
                 conversations, status, /mcp), mounted by the plugin; the one error boundary
    python_api   the in-process door: McpEngine, the openai SDK's call shape, no HTTP
    chat/ messages/  each door's translation to and from the Responses core
    runtime      what both doors start beside the engine: tool servers, store, service
    responses/   the Responses core: body -> request (parsed once) -> one Run per response;
                 create (foreground, streamed, background) and stored-response queries
    conversations/  the Conversations API, in the store's database
    loop/        the agent loop: tool set, MCP calls, turn after turn, on a ParsableContext
    engine/      per model family: render a turn, generate, parse output with a ResponsesParser
    events/      ResponseStream: the response's items and typed events (openai SDK types)
    servers/     tool sources: one MCP session per configured server, remote servers, /mcp
    store/       where responses are kept: SQLite or PostgreSQL
    config/ access/  --tool-server and settings; callers and their permissions
    types/       the values every layer passes: request, turn parts, what a tool source is
    _compat.py   thin wrappers around vLLM's private API, nothing else; limits, trace,
                 metrics, spans, redact; errors.py at the bottom

Public names: `McpEngine` (the loop in process), `ResponsesParser` (model output deltas ->
parts -> Responses items and events) and `ParsableContext` (the conversation the loop renders,
parses and extends turn by turn), the last two named after their counterparts in vLLM's own
Responses code. Importing any of them does not import vLLM; `McpEngine` imports it when built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["McpEngine", "ParsableContext", "ResponsesParser"]

if TYPE_CHECKING:
    from vllm_mcp_ext.engine.parser import ResponsesParser
    from vllm_mcp_ext.loop.context import ParsableContext
    from vllm_mcp_ext.python_api import McpEngine

_LAZY = {
    "McpEngine": "vllm_mcp_ext.python_api",
    "ResponsesParser": "vllm_mcp_ext.engine.parser",
    "ParsableContext": "vllm_mcp_ext.loop.context",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use: `import vllm_mcp_ext` (done by vLLM's plugin loader) stays cheap.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vllm_mcp_ext' has no attribute {name!r}")
