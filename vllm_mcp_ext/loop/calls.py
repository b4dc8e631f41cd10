"""Running one MCP tool call. Every failure is a value (`types.source.CallOutcome`): a failed
`mcp_call` item whose error the model also sees as the tool result, so the loop can go on."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from mcp import types
from openai.types.responses.mcp_tool_call_error import McpToolExecutionError

from vllm_mcp_ext import bounded_json, observe
from vllm_mcp_ext.engine.media import media_parts
from vllm_mcp_ext.loop.toolset import ExposedTool, ToolSet
from vllm_mcp_ext.policy.guardrails import Result
from vllm_mcp_ext.types.client_handlers import NO_HANDLERS, ClientHandlers
from vllm_mcp_ext.types.source import (
    CallFailed,
    CallOutcome,
    Code,
    ServerUnavailable,
    ToolSource,
    protocol_error,
)

__all__ = [
    "CallOutcome",
    "outcome_of",
    "parse_arguments",
    "protocol_error",
    "refused",
    "run_call",
    "unknown_tool",
    "with_text",
]


def parse_arguments(tool: ExposedTool, arguments: str) -> dict[str, Any] | CallOutcome:
    """The call's arguments as an object, or the failed outcome the model should see."""
    try:
        value = bounded_json.loads_bounded(arguments) if arguments.strip() else {}
    except bounded_json.TooDeep as exc:
        return protocol_error(Code.INVALID_PARAMS, f"Arguments for tool {tool.name!r} are {exc}")
    except json.JSONDecodeError as exc:
        return protocol_error(Code.INVALID_PARAMS, f"Arguments for tool {tool.name!r} are not JSON: {exc}")
    if not isinstance(value, dict):
        return protocol_error(Code.INVALID_PARAMS, f"Arguments for tool {tool.name!r} must be an object")
    schema = tool.tool.input_schema
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
        error = jsonschema.exceptions.best_match(validator(schema, registry=_NO_RETRIEVAL).iter_errors(value))
    except jsonschema.SchemaError:
        return value  # a server's broken schema is its own business: let the server judge
    except referencing.exceptions.Unresolvable as exc:
        return protocol_error(
            Code.INVALID_PARAMS,
            f"The input schema of tool {tool.name!r} refers to {_ref_of(exc)}, outside the tool's schema; "
            "only references inside the schema are followed",
        )
    if error is not None:
        return protocol_error(
            Code.INVALID_PARAMS, f"Invalid arguments for tool {tool.name!r}: {error.message}"
        )
    return value


def _refuse(uri: str) -> referencing.Resource[Any]:
    """A schema from a server never makes us fetch a URL or read a file: only references inside
    the document (``#/$defs/...``) resolve."""
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs


_NO_RETRIEVAL: referencing.Registry[Any] = referencing.Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _ref_of(exc: referencing.exceptions.Unresolvable) -> str:
    ref = getattr(exc, "ref", None) or getattr(getattr(exc, "_wrapped", None), "ref", None)
    return repr(ref[:200]) if isinstance(ref, str) else "a document"


def unknown_tool(name: str, toolset: ToolSet) -> CallOutcome:
    available = ", ".join(t.exposed_name for t in toolset.tools) or "none"
    return protocol_error(Code.METHOD_NOT_FOUND, f"Unknown tool {name!r}. Available tools: {available}")


async def run_call(
    source: ToolSource,
    tool: ExposedTool,
    arguments: dict[str, Any],
    *,
    max_output: int | None = None,
    handlers: ClientHandlers = NO_HANDLERS,
) -> CallOutcome:
    try:
        with observe.calls_for(tool.server_label):  # the trace names the server as the request does
            result = await source.call_tool(tool.name, arguments, handlers=handlers)
    except (ServerUnavailable, CallFailed) as exc:
        return exc.outcome()
    return outcome_of(result, max_output=max_output)


def outcome_of(result: types.CallToolResult, *, max_output: int | None = None) -> CallOutcome:
    """A tool result as the item's output (or error) and the model's text, each at most
    `max_output` characters (cut with a marker that gives the full size)."""
    text = truncate(result_text(result), max_output)
    if result.is_error:
        content = [
            _bounded(block.model_dump(mode="json", exclude_none=True), max_output) for block in result.content
        ]
        return CallOutcome(
            output=None,
            error=McpToolExecutionError(type="mcp_tool_execution_error", content=content),
            # Servers often say "Error ..." themselves; don't make it "Error: Error ...".
            model_text=text if text.lower().startswith("error") else f"Error: {text}",
        )
    return CallOutcome(output=text, error=None, model_text=text, media=media_parts(result))


def truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n[truncated: the tool returned {len(text)} characters; the first {limit} are kept]"
    )


def _bounded(value: Any, limit: int | None) -> Any:
    """Every string in a content block cut to `limit` (image data included)."""
    if isinstance(value, str):
        return truncate(value, limit)
    if isinstance(value, dict):
        return {k: _bounded(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded(v, limit) for v in value]
    return value


def result_text(result: types.CallToolResult) -> str:
    """The text a tool result gives the model: its text blocks, else its structured content,
    and a short description of anything else so nothing is dropped silently."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}, {_decoded_size(block.data)} bytes]")
        elif isinstance(block, types.ResourceLink):
            details = ", ".join(filter(None, [block.name, block.mime_type]))
            parts.append(f"[resource link: {block.uri}{f' ({details})' if details else ''}]")
        elif isinstance(block, types.EmbeddedResource):
            parts.append(_describe_resource(block.resource))
    if not any(isinstance(b, types.TextContent) for b in result.content) and (
        result.structured_content is not None
    ):
        parts.insert(0, json.dumps(result.structured_content))
    return "\n".join(parts)


def _describe_resource(resource: types.TextResourceContents | types.BlobResourceContents) -> str:
    mime = resource.mime_type or "unknown type"
    if isinstance(resource, types.TextResourceContents):
        return f"[resource: {resource.uri}, {mime}, {len(resource.text)} characters]\n{resource.text}"
    return f"[resource: {resource.uri}, {mime}, {_decoded_size(resource.blob)} bytes]"


def _decoded_size(data: str) -> int:
    """Bytes of base64 data, without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def refused(reason: str) -> CallOutcome:
    """A call an operator's guardrail refused: the model and the client see why, as a tool error."""
    return _error_text(f"Refused by policy: {reason}")


def with_text(outcome: CallOutcome, result: Result) -> CallOutcome:
    """The outcome with the text a guardrail gave back (unchanged when it changed nothing)."""
    if result.text == outcome.model_text:
        return outcome
    if outcome.failed:
        return _error_text(result.text)
    return CallOutcome(output=result.text, error=None, model_text=result.text, media=outcome.media)


def _error_text(text: str) -> CallOutcome:
    return outcome_of(
        types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
    )
