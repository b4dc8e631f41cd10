"""The test suite's own reference MCP server: every tool, resource and prompt the MCP conformance
suite's server scenarios ask for (``conformance list``; their texts are in the suite's
dist/index.js), written on the SDK's low-level `Server` so each schema and content block is
exactly as the scenario spells it. Put behind ``/mcp/<label>``, the scenarios then judge the
proxy: images, audio, embedded resources, logging, progress, sampling, elicitation, JSON Schema
2020-12 and resources, prompts and completion all have to pass through it unchanged.

    python -m tests.conformance.reference_server        # stdio
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

warnings.simplefilter("ignore", MCPDeprecationWarning)  # logging, sampling: still in 2025-11-25

# a 1x1 red PNG and a 1-sample 8 kHz WAV
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
    )
).decode()
WAV = base64.b64encode(
    b"RIFF"
    + (38).to_bytes(4, "little")
    + b"WAVEfmt "
    + (16).to_bytes(4, "little")
    + bytes.fromhex("01000100401f0000401f00000100080064617461")
    + (2).to_bytes(4, "little")
    + b"\x80\x80"
).decode()
SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


def _object(**properties: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in properties.items()},
        "required": list(properties),
    }


TOOLS = [
    types.Tool(name="test_simple_text", description="Returns simple text.", input_schema=NO_ARGS),
    types.Tool(name="test_image_content", description="Returns an image.", input_schema=NO_ARGS),
    types.Tool(name="test_audio_content", description="Returns audio.", input_schema=NO_ARGS),
    types.Tool(
        name="test_embedded_resource", description="Returns an embedded resource.", input_schema=NO_ARGS
    ),
    types.Tool(
        name="test_multiple_content_types", description="Returns text, image, resource.", input_schema=NO_ARGS
    ),
    types.Tool(name="test_tool_with_logging", description="Logs three messages.", input_schema=NO_ARGS),
    types.Tool(name="test_error_handling", description="Always fails.", input_schema=NO_ARGS),
    types.Tool(name="test_tool_with_progress", description="Reports progress.", input_schema=NO_ARGS),
    types.Tool(
        name="test_sampling", description="Asks the client's LLM.", input_schema=_object(prompt="The prompt")
    ),
    types.Tool(
        name="test_elicitation", description="Asks the user.", input_schema=_object(message="The message")
    ),
    types.Tool(
        name="test_elicitation_sep1034_defaults", description="Elicits with defaults.", input_schema=NO_ARGS
    ),
    types.Tool(name="test_elicitation_sep1330_enums", description="Elicits enums.", input_schema=NO_ARGS),
    types.Tool(name="test_reconnection", description="Closes its SSE stream mid-call.", input_schema=NO_ARGS),
    types.Tool(
        name="json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features",
        input_schema={
            "$schema": SCHEMA_2020_12,
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                }
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": False,
        },
    ),
]


def _text(text: str) -> types.TextContent:
    return types.TextContent(type="text", text=text)


def _image() -> types.ImageContent:
    return types.ImageContent(type="image", data=PNG, mime_type="image/png")


def _embedded(uri: str, text: str, mime: str = "text/plain") -> types.EmbeddedResource:
    return types.EmbeddedResource(
        type="resource", resource=types.TextResourceContents(uri=uri, mime_type=mime, text=text)
    )


async def _logging(ctx: Any) -> list[Any]:
    for i, message in enumerate(
        ["Tool execution started", "Tool processing data", "Tool execution completed"]
    ):
        if i:
            await anyio.sleep(0.05)
        await ctx.session.send_log_message("info", message, related_request_id=ctx.request_id)
    return [_text("Logging tool finished")]


async def _progress(ctx: Any) -> list[Any]:
    for i, done in enumerate((0, 50, 100)):
        if i:
            await anyio.sleep(0.05)
        await ctx.session.report_progress(done, 100)
    return [_text("Progress tool finished")]


async def _sampling(ctx: Any, args: dict[str, Any]) -> list[Any]:
    message = types.SamplingMessage(role="user", content=_text(str(args.get("prompt", ""))))
    result = await ctx.session.create_message([message], max_tokens=100, related_request_id=ctx.request_id)
    content = result.content if isinstance(result.content, types.TextContent) else None
    return [_text(f"LLM response: {content.text if content else result.content}")]


async def _elicit(ctx: Any, message: str, schema: dict[str, Any], prefix: str) -> list[Any]:
    result = await ctx.session.elicit(message, schema, related_request_id=ctx.request_id)
    return [_text(f"{prefix}action={result.action}, content={json.dumps(result.content)}")]


SEP1034 = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    },
}
SEP1330 = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


async def _reconnection(ctx: Any) -> list[Any]:
    if ctx.close_sse_stream is not None:  # streamable HTTP with an event store: the client resumes
        await ctx.close_sse_stream()
    await anyio.sleep(0.2)
    return [_text("Reconnection test completed")]


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    simple: dict[str, Callable[[], list[Any]]] = {
        "test_simple_text": lambda: [_text("This is a simple text response for testing.")],
        "test_image_content": lambda: [_image()],
        "test_audio_content": lambda: [types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")],
        "test_embedded_resource": lambda: [
            _embedded("test://embedded-resource", "This is an embedded resource content.")
        ],
        "test_multiple_content_types": lambda: [
            _text("Multiple content types test:"),
            _image(),
            _embedded("test://mixed-content-resource", '{"test":"data","value":123}', "application/json"),
        ],
        "json_schema_2020_12_tool": lambda: [_text(f"Received: {json.dumps(args)}")],
    }
    slow: dict[str, Callable[[], Awaitable[list[Any]]]] = {
        "test_tool_with_logging": lambda: _logging(ctx),
        "test_tool_with_progress": lambda: _progress(ctx),
        "test_sampling": lambda: _sampling(ctx, args),
        "test_elicitation": lambda: _elicit(
            ctx,
            str(args.get("message", "")),
            _object(username="User's response", email="User's email address"),
            "User response: ",
        ),
        "test_elicitation_sep1034_defaults": lambda: _elicit(
            ctx, "Defaults", SEP1034, "Elicitation completed: "
        ),
        "test_elicitation_sep1330_enums": lambda: _elicit(ctx, "Enums", SEP1330, "Elicitation completed: "),
        "test_reconnection": lambda: _reconnection(ctx),
    }
    if params.name == "test_error_handling":
        return types.CallToolResult(
            content=[_text("This tool intentionally returns an error for testing")], is_error=True
        )
    if params.name in simple:
        return types.CallToolResult(content=simple[params.name]())
    if params.name in slow:
        return types.CallToolResult(content=await slow[params.name]())
    raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")


RESOURCES = [
    types.Resource(
        uri="test://static-text",
        name="static-text",
        description="A static text resource",
        mime_type="text/plain",
    ),
    types.Resource(
        uri="test://static-binary", name="static-binary", description="A static PNG", mime_type="image/png"
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        description="Subscribable",
        mime_type="text/plain",
    ),
]
TEMPLATE = types.ResourceTemplate(
    uri_template="test://template/{id}/data",
    name="template",
    description="Data by id",
    mime_type="application/json",
)


async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    contents: list[types.TextResourceContents | types.BlobResourceContents]
    if uri == "test://static-text":
        contents = [
            types.TextResourceContents(
                uri=uri, mime_type="text/plain", text="This is the content of the static text resource."
            )
        ]
    elif uri == "test://static-binary":
        contents = [types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)]
    elif uri == "test://watched-resource":
        contents = [
            types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content.")
        ]
    elif uri.startswith("test://template/") and uri.endswith("/data"):
        id_ = uri.removeprefix("test://template/").removesuffix("/data")
        data = {"id": id_, "templateTest": True, "data": f"Data for ID: {id_}"}
        contents = [types.TextResourceContents(uri=uri, mime_type="application/json", text=json.dumps(data))]
    else:
        raise MCPError(-32002, f"Resource not found: {uri}")
    return types.ReadResourceResult(contents=contents)


PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A simple prompt"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with arguments",
        arguments=[
            types.PromptArgument(name="arg1", description="First test argument", required=True),
            types.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt with an embedded resource",
        arguments=[types.PromptArgument(name="resourceUri", description="URI to embed", required=True)],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]


async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    args = params.arguments or {}

    def user(content: Any) -> types.PromptMessage:
        return types.PromptMessage(role="user", content=content)

    if params.name == "test_simple_prompt":
        messages = [user(_text("This is a simple prompt for testing."))]
    elif params.name == "test_prompt_with_arguments":
        messages = [
            user(_text(f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"))
        ]
    elif params.name == "test_prompt_with_embedded_resource":
        uri = args.get("resourceUri", "test://example-resource")
        messages = [
            user(_embedded(uri, "Embedded resource content for testing.")),
            user(_text("Please process the embedded resource above.")),
        ]
    elif params.name == "test_prompt_with_image":
        messages = [user(_image()), user(_text("Please analyze the image above."))]
    else:
        raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name}")
    return types.GetPromptResult(messages=messages)


async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
    values = [v for v in ("paris", "park", "party") if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


def build() -> Server[Any]:
    subscribed: set[str] = set()

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=RESOURCES)

    async def list_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[TEMPLATE])

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=PROMPTS)

    async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        subscribed.add(str(params.uri))
        return types.EmptyResult()

    async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        subscribed.discard(str(params.uri))
        return types.EmptyResult()

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    return Server(
        "conformance-reference",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_set_logging_level=set_level,
    )


async def main() -> None:
    server = build()
    options = server.create_initialization_options(NotificationOptions(resources_changed=True))
    async with stdio_server() as (read, write):
        await server.run(read, write, options)


if __name__ == "__main__":
    anyio.run(main)
