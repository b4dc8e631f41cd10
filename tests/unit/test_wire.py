"""Wire shapes of output items: empty optional fields left out where OpenAI leaves them out."""

from __future__ import annotations

from openai.types.responses import ResponseOutputItemDoneEvent
from openai.types.responses.response_output_item import McpCall, McpListTools, McpListToolsTool

from vllm_mcp_ext.events.wire import to_wire


def _done(item) -> dict:
    event = ResponseOutputItemDoneEvent(
        type="response.output_item.done", item=item, output_index=0, sequence_number=3
    )
    return to_wire(event)["item"]


def test_mcp_list_tools_leaves_out_an_empty_error_and_empty_tool_fields():
    item = McpListTools(
        id="mcpl_1",
        type="mcp_list_tools",
        server_label="calc",
        tools=[
            McpListToolsTool(name="add", input_schema={"type": "object"}),
            McpListToolsTool(
                name="sub", input_schema={}, description="Subtract.", annotations={"readOnlyHint": True}
            ),
        ],
    )
    assert _done(item) == {
        "id": "mcpl_1",
        "type": "mcp_list_tools",
        "server_label": "calc",
        "tools": [
            {"name": "add", "input_schema": {"type": "object"}},
            {
                "name": "sub",
                "input_schema": {},
                "description": "Subtract.",
                "annotations": {"readOnlyHint": True},
            },
        ],
    }


def test_a_failed_listing_keeps_its_error():
    item = McpListTools(id="mcpl_2", type="mcp_list_tools", server_label="ghost", tools=[], error="refused")
    assert _done(item)["error"] == "refused"


def test_mcp_call_keeps_openais_nulls():
    item = McpCall(
        id="mcp_1", type="mcp_call", server_label="calc", name="add", arguments="{}", status="in_progress"
    )
    wire = _done(item)
    assert wire["output"] is None and wire["error"] is None and wire["approval_request_id"] is None


def test_items_inside_a_response_snapshot_are_pruned_too():
    from openai.types.responses import Response

    listing = McpListTools(
        id="mcpl_3",
        type="mcp_list_tools",
        server_label="calc",
        tools=[McpListToolsTool(name="a", input_schema={})],
    )
    response = Response.model_construct(id="resp_1", output=[listing], object="response")
    wire = to_wire(response)
    assert wire["output"][0] == {
        "id": "mcpl_3",
        "type": "mcp_list_tools",
        "server_label": "calc",
        "tools": [{"name": "a", "input_schema": {}}],
    }
