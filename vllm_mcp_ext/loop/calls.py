"""Running one MCP tool call. Every failure is a value: a failed `mcp_call` item whose error the
model also sees as the tool result, so the loop can go on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jsonschema
from mcp import types
from openai.types.responses.mcp_tool_call_error import McpProtocolError, McpToolExecutionError

from vllm_mcp_ext import trace
from vllm_mcp_ext.loop.toolset import ExposedTool, ToolSet
from vllm_mcp_ext.servers.connection import CallFailed, ServerUnavailable
from vllm_mcp_ext.servers.source import ToolSource

INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
SERVER_UNAVAILABLE = -32000


@dataclass(frozen=True)
class CallOutcome:
    output: str | None  # the item's `output`
    error: McpProtocolError | McpToolExecutionError | None
    model_text: str  # what the model is shown as the tool result

    @property
    def failed(self) -> bool:
        return self.error is not None


def protocol_error(code: int, message: str) -> CallOutcome:
    return CallOutcome(
        output=None,
        error=McpProtocolError(type="mcp_protocol_error", code=code, message=message),
        model_text=f"Error: {message}",
    )


def parse_arguments(tool: ExposedTool, arguments: str) -> dict[str, Any] | CallOutcome:
    """The call's arguments as an object, or the failed outcome the model should see."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return protocol_error(INVALID_PARAMS, f"Arguments for tool {tool.name!r} are not JSON: {exc}")
    if not isinstance(value, dict):
        return protocol_error(INVALID_PARAMS, f"Arguments for tool {tool.name!r} must be an object")
    try:
        jsonschema.validate(value, tool.tool.input_schema)
    except jsonschema.ValidationError as exc:
        return protocol_error(INVALID_PARAMS, f"Invalid arguments for tool {tool.name!r}: {exc.message}")
    except jsonschema.SchemaError:
        pass  # a server's broken schema is its own business: let the server judge
    return value


def unknown_tool(name: str, toolset: ToolSet) -> CallOutcome:
    available = ", ".join(t.exposed_name for t in toolset.tools) or "none"
    return protocol_error(METHOD_NOT_FOUND, f"Unknown tool {name!r}. Available tools: {available}")


async def run_call(source: ToolSource, tool: ExposedTool, arguments: dict[str, Any]) -> CallOutcome:
    start = time.perf_counter()
    try:
        result = await source.call_tool(tool.name, arguments)
    except ServerUnavailable as exc:
        return protocol_error(SERVER_UNAVAILABLE, exc.message)
    except CallFailed as exc:
        return protocol_error(exc.code, exc.message)
    finally:
        trace.record_call(tool.server_label, tool.name, start)
    return outcome_of(result)


def outcome_of(result: types.CallToolResult) -> CallOutcome:
    text = result_text(result)
    if result.is_error:
        content = [block.model_dump(mode="json", exclude_none=True) for block in result.content]
        return CallOutcome(
            output=None,
            error=McpToolExecutionError(type="mcp_tool_execution_error", content=content),
            # Servers often say "Error ..." themselves; don't make it "Error: Error ...".
            model_text=text if text.lower().startswith("error") else f"Error: {text}",
        )
    return CallOutcome(output=text, error=None, model_text=text)


def result_text(result: types.CallToolResult) -> str:
    """The text a tool result gives the model: its text blocks, else its structured content,
    and a short description of anything else so nothing is dropped silently."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link: {block.uri}]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource: {resource.uri}]")
    if not any(isinstance(b, types.TextContent) for b in result.content) and (
        result.structured_content is not None
    ):
        parts.insert(0, json.dumps(result.structured_content))
    return "\n".join(parts)
