"""The table of which request fields each door serves (`door_fields`) is what the router and the
chat and messages doors read: a field the table serves is kept, any other is not, and changing the
table changes what the doors do."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_mcp_ext.api.routing import choose_route
from vllm_mcp_ext.chat.request import chat_request
from vllm_mcp_ext.errors import Unsupported
from vllm_mcp_ext.messages.request import messages_request
from vllm_mcp_ext.types import door_fields
from vllm_mcp_ext.types.door_fields import DoorFields

PLAIN = {"model": "m", "input": "hi"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []}
MESSAGES = {
    "model": "m",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
    "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/mcp", "name": "x"}],
    "tools": [{"type": "mcp_toolset", "mcp_server_name": "x"}],
}


def _route(body: dict[str, Any]) -> tuple[str, str]:
    route = choose_route(body, harmony=False, previous_is_ours=False)
    return route.handler, route.reason


def _with(table: DoorFields, name: str) -> DoorFields:
    return DoorFields(served=table.served | {name}, neutral=table.neutral)


@pytest.mark.parametrize("name", sorted(door_fields.RESPONSES.served - {"previous_response_id"}))
def test_every_served_responses_field_keeps_a_plain_request_with_the_plugin(name: str) -> None:
    assert _route({**PLAIN, name: 1}) == ("plugin", "served as well as stock")


@pytest.mark.parametrize(
    ("name", "value"), [(n, v) for n, values in door_fields.RESPONSES.neutral.items() for v in values]
)
def test_a_neutral_value_keeps_the_request_and_another_value_does_not(name: str, value: Any) -> None:
    assert _route({**PLAIN, name: value}) == ("plugin", "served as well as stock")
    assert _route({**PLAIN, name: "something else"}) == ("stock", f"field {name!r}")


def test_the_responses_table_decides_the_route(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {**PLAIN, "novel_field": 3}
    assert _route(body) == ("stock", "field 'novel_field'")
    monkeypatch.setattr(door_fields, "RESPONSES", _with(door_fields.RESPONSES, "novel_field"))
    assert _route(body) == ("plugin", "served as well as stock")


def test_the_chat_table_decides_what_the_chat_door_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {**CHAT, "novel_field": 3}
    with pytest.raises(Unsupported, match="'novel_field' is not supported with mcp tools") as refused:
        chat_request(body)
    assert refused.value.param == "novel_field"
    monkeypatch.setattr(door_fields, "CHAT", _with(door_fields.CHAT, "novel_field"))
    assert chat_request(body).body["input"] == [{"type": "message", "role": "user", "content": "hi"}]


def test_the_messages_table_decides_what_the_messages_door_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {**MESSAGES, "novel_field": 3}
    with pytest.raises(Unsupported, match="'novel_field' is not supported with the MCP connector"):
        messages_request(body)
    monkeypatch.setattr(door_fields, "MESSAGES", _with(door_fields.MESSAGES, "novel_field"))
    assert messages_request(body).body["input"][-1]["content"] == "hi"


@pytest.mark.parametrize(
    ("table", "body"), [(door_fields.CHAT, CHAT), (door_fields.MESSAGES, MESSAGES)], ids=["chat", "messages"]
)
def test_a_neutral_value_passes_the_translating_doors(table: DoorFields, body: dict[str, Any]) -> None:
    translate = chat_request if table is door_fields.CHAT else messages_request
    for name, values in table.neutral.items():
        for value in values:
            translate({**body, name: value})
        with pytest.raises(Unsupported, match=repr(name)):
            translate({**body, name: "something else"})
