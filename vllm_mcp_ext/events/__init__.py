"""Responses stream events and the response object, built with the `openai` SDK's types."""

from vllm_mcp_ext.events.stream import ResponseStream

__all__ = ["ResponseStream"]
