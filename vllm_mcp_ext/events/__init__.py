"""Responses stream events and the response object, built with the `openai` SDK's types; items
as OpenAI lists them (`items`) and their wire JSON (`wire`, `sse`)."""

from vllm_mcp_ext.events.stream import ResponseStream

__all__ = ["ResponseStream"]
