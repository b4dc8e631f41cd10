from mcp import types
from openai.types.responses.tool import McpAllowedToolsMcpToolFilter

from vllm_mcp_ext.loop.calls import outcome_of, parse_arguments, result_text, unknown_tool
from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet, canonical, filter_allowed

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def tool(name: str, read_only: bool | None = None) -> types.Tool:
    annotations = types.ToolAnnotations(read_only_hint=read_only) if read_only is not None else None
    return types.Tool(name=name, description=f"{name} tool", input_schema=SCHEMA, annotations=annotations)


def test_colliding_names_get_the_server_label_and_others_stay_plain() -> None:
    toolset = ToolSet.build(
        [ServerTools("calc", (tool("add"), tool("mul"))), ServerTools("facts", (tool("add"),))]
    )
    assert [t.exposed_name for t in toolset.tools] == ["calc__add", "mul", "facts__add"]
    found = toolset.lookup("facts__add")
    assert found is not None and (found.server_label, found.name) == ("facts", "add")


def test_client_function_names_are_reserved() -> None:
    toolset = ToolSet.build([ServerTools("calc", (tool("get_weather"),))], reserved=["get_weather"])
    assert toolset.tools[0].exposed_name == "calc__get_weather"


def test_function_param_is_what_the_chat_template_renders() -> None:
    (exposed,) = ToolSet.build([ServerTools("calc", (tool("add"),))]).tools
    assert exposed.function_param() == {
        "type": "function",
        "function": {"name": "add", "description": "add tool", "parameters": canonical(SCHEMA)},
    }


def test_schemas_render_with_sorted_keys_whatever_the_transport() -> None:
    shuffled = {"required": ["a"], "properties": {"a": {"type": "integer", "title": "A"}}, "type": "object"}
    t = types.Tool(name="add", input_schema=shuffled)
    (exposed,) = ToolSet.build([ServerTools("calc", (t,))]).tools
    params = exposed.function_param()["function"]["parameters"]
    assert list(params) == ["properties", "required", "type"] and list(params["properties"]["a"]) == [
        "title",
        "type",
    ]


def test_allowed_tools_list_and_filter_forms() -> None:
    tools = (tool("add", True), tool("crash", False), tool("mul"))
    assert [t.name for t in filter_allowed(tools, ["mul", "nope"])] == ["mul"]
    ro = McpAllowedToolsMcpToolFilter(read_only=True)
    assert [t.name for t in filter_allowed(tools, ro)] == ["add"]
    named = McpAllowedToolsMcpToolFilter(tool_names=["add", "mul"], read_only=False)
    assert [t.name for t in filter_allowed(tools, named)] == ["mul"]
    assert filter_allowed(tools, None) == tools


def test_arguments_are_checked_against_the_input_schema() -> None:
    (exposed,) = ToolSet.build([ServerTools("calc", (tool("add"),))]).tools
    assert parse_arguments(exposed, '{"a": 1}') == {"a": 1}
    bad = parse_arguments(exposed, '{"a": "one"}')
    assert bad.error.code == -32602 and bad.model_text.startswith("Error: Invalid arguments for tool 'add'")
    not_json = parse_arguments(exposed, '{"a": ')
    assert not_json.error.type == "mcp_protocol_error" and "not JSON" in not_json.model_text


def test_unknown_tool_lists_what_exists() -> None:
    toolset = ToolSet.build([ServerTools("calc", (tool("add"),))])
    outcome = unknown_tool("sub", toolset)
    assert outcome.model_text == "Error: Unknown tool 'sub'. Available tools: add"


def test_result_text_keeps_every_kind_of_content() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="hello"),
            types.ImageContent(type="image", data="aGVsbG8=", mime_type="image/png"),
            types.ResourceLink(type="resource_link", uri="file:///a.txt", name="a"),
        ]
    )
    assert result_text(result) == "hello\n[image: image/png, 5 bytes]\n[resource link: file:///a.txt (a)]"
    structured = types.CallToolResult(content=[], structured_content={"x": 1})
    assert result_text(structured) == '{"x": 1}'


def test_tool_errors_reach_the_model_marked_once() -> None:
    def failed(text: str) -> str:
        return outcome_of(
            types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
        ).model_text

    assert failed("division by zero") == "Error: division by zero"
    assert (
        failed("Error executing tool divide: division by zero")
        == "Error executing tool divide: division by zero"
    )
