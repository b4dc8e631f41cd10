"""Which top-level request fields each door serves: the one table the router and the doors read.

A door serves a field when it honours it at any value (``served``), or only at values that change
nothing (``neutral``: stock's defaults, or empty). A field set to anything else is not served:
the Responses router leaves such a request without ``mcp`` tools to vLLM, and the chat and
messages doors refuse it with a 400 naming the field. A leaf: it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DoorFields:
    served: frozenset[str]  # honoured whatever their value
    neutral: Mapping[str, tuple[Any, ...]]  # honoured only at these values

    def unserved(self, body: Mapping[str, Any]) -> str | None:
        """The first field of ``body`` this door does not serve (null counts as unset); None
        when it serves them all."""
        for name, value in body.items():
            if value is None or name in self.served:
                continue
            if value not in self.neutral.get(name, ()):
                return name
        return None


# ``POST /v1/responses`` without ``mcp`` tools: the loop takes such a request over from vLLM only
# when it serves every field as well as stock does (see api/routing.py).
RESPONSES = DoorFields(
    served=frozenset(
        {
            "model",
            "input",
            "instructions",
            "tools",
            "tool_choice",
            "metadata",
            "temperature",
            "top_p",
            "max_output_tokens",
            "max_tool_calls",
            "parallel_tool_calls",
            "store",
            "background",
            "previous_response_id",
            "user",
            "text",
            "stream",
        }
    ),
    neutral={
        "include": ([],),
        "truncation": ("disabled",),
        "service_tier": ("auto", "default"),
        "top_logprobs": (0,),
        "include_reasoning": (True,),
    },
)
# ``POST /v1/responses`` with ``mcp`` tools: every field goes to the loop; these are refused (a 400)
# when set: ``prompt`` at any truthy value, the vLLM extensions the loop does not honour at any
# value but the ones that change nothing (the rest of vLLM's extensions pass to each turn, see
# responses/engine_options.py).
RESPONSES_REFUSED = ("prompt",)
RESPONSES_NOT_HONOURED: Mapping[str, tuple[Any, ...]] = {
    "include_reasoning": (True,),  # reasoning items are always shown
    "structured_outputs": ({},),  # use text.format: it composes with the tool calls
    "previous_input_messages": ([],),  # harmony (gpt-oss) only
    "kv_transfer_params": ({},),  # disaggregated serving is not driven through the loop
    "ec_transfer_params": ({},),
    "watermarking": (False,),
}

# ``POST /v1/chat/completions`` with ``mcp`` tools (translated to a Responses body, chat/request.py).
CHAT = DoorFields(
    served=frozenset(
        {
            "model",
            "messages",
            "tools",
            "tool_choice",
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "parallel_tool_calls",
            "user",
            "metadata",
            "stream",
            "stream_options",
            "response_format",
            "reasoning_effort",
            "mcp_approval_responses",
            "stream_interval",  # vLLM's: tokens per streamed delta, passed to every turn
        }
    ),
    neutral={
        "n": (1,),
        "logprobs": (False,),
        "presence_penalty": (0, 0.0),
        "frequency_penalty": (0, 0.0),
        "store": (False,),
        "service_tier": ("auto", "default"),
    },
)

# ``POST /v1/messages`` with the MCP connector (translated, messages/request.py).
MESSAGES = DoorFields(
    served=frozenset(
        {
            "model",
            "messages",
            "system",
            "max_tokens",
            "tools",
            "tool_choice",
            "mcp_servers",
            "temperature",
            "top_p",
            "metadata",
            "stream",
            "context_management",  # Anthropic's context editing (loop/context_edits.py)
        }
    ),
    neutral={
        "stop_sequences": ([],),
        "thinking": ({"type": "disabled"},),
        "service_tier": ("auto", "standard_only"),
    },
)
