"""Which requests the chat and messages doors take: only those with MCP; the rest is stock's."""

from __future__ import annotations

from vllm_mcp_ext.api.routing import choose_chat_route, choose_messages_route

FUNCTION = {"type": "function", "function": {"name": "f", "parameters": {}}}


def test_chat_requests_with_an_mcp_tool_are_the_plugin_s() -> None:
    assert (
        choose_chat_route({"tools": [FUNCTION, {"type": "mcp", "server_label": "calc"}]}).handler == "plugin"
    )


def test_chat_requests_without_mcp_tools_are_stock() -> None:
    for body in (
        {},
        {"tools": [FUNCTION]},
        {"tools": None},
        {"tools": "mcp"},
        {"mcp_servers": [{"type": "url"}]},
    ):
        assert choose_chat_route(body).handler == "stock", body


def test_messages_with_the_connector_are_the_plugin_s() -> None:
    assert (
        choose_messages_route({"mcp_servers": [{"type": "url", "url": "u", "name": "n"}]}).handler == "plugin"
    )
    assert (
        choose_messages_route({"tools": [{"type": "mcp_toolset", "mcp_server_name": "calc"}]}).handler
        == "plugin"
    )


def test_messages_without_the_connector_are_stock() -> None:
    for body in (
        {},
        {"mcp_servers": []},
        {"tools": [{"name": "f", "input_schema": {}}]},
        {"tools": {"x": 1}},
    ):
        assert choose_messages_route(body).handler == "stock", body
