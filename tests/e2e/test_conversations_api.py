"""The Conversations API against the real server, through the `openai` SDK: a response in a
conversation runs the MCP loop, and its MCP items are kept in the conversation."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.e2e

CALC = {"type": "mcp", "server_label": "calc", "require_approval": "never"}


def test_a_response_in_a_conversation_keeps_its_mcp_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(metadata={"user": "e2e"})
    r = client.responses.create(
        model="tiny", input="What is 2 plus 3?", tools=[CALC], temperature=0, conversation=conversation.id
    )
    assert r.conversation is not None and r.conversation.id == conversation.id
    assert r.output_text == "2 plus 3 is 5."
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [i.type for i in items] == ["message", "mcp_list_tools", "mcp_call", "message"]
    assert (items[2].name, items[2].output) == ("add", "5")
    assert [i.id for i in items[1:]] == [i.id for i in r.output]
    assert client.conversations.delete(conversation.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)
