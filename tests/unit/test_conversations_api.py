"""The Conversations API in process (tests/support/asgi.py), through the `openai` SDK's
``conversations`` resource: conversations and items kept in the SQLite store, ``conversation`` on
``/v1/responses`` feeding the model the conversation and adding each response's items to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.asgi import BASE_URL, CALC, plugin_client
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.types.parts import TextDelta

TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]


@pytest.fixture
async def engine() -> ScriptedTurns:
    return ScriptedTurns(
        [tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("It is 5.")], [TextDelta("Still 5.")]]
    )


@pytest.fixture
async def client(engine: ScriptedTurns, tmp_path: Path) -> AsyncIterator[openai.AsyncOpenAI]:
    async with plugin_client(engine, (CALC,), tmp_path / "responses.sqlite3") as http:
        yield openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in messages]


async def test_a_conversation_feeds_the_model_and_keeps_every_item(
    client: openai.AsyncOpenAI, engine: ScriptedTurns
) -> None:
    conversation = await client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Call me Ada."}], metadata={"topic": "sums"}
    )
    assert conversation.id.startswith("conv_") and conversation.metadata == {"topic": "sums"}
    first = await client.responses.create(
        model="scripted", input="2+3?", tools=TOOLS, conversation=conversation.id
    )
    assert first.conversation is not None and first.conversation.id == conversation.id
    assert [i.type for i in first.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert texts(engine.seen[0]) == [("user", "Call me Ada."), ("user", "2+3?")]

    items = await client.conversations.items.list(conversation.id, order="asc")
    assert [i.type for i in items.data] == ["message", "message", "mcp_list_tools", "mcp_call", "message"]
    assert items.data[3].output == "5" and items.data[4].id == first.output[2].id

    second = await client.responses.create(
        model="scripted", input="And again?", tools=TOOLS, conversation={"id": conversation.id}
    )
    assert [i.type for i in second.output] == ["message"]  # the tool list is still in the conversation
    seen = engine.seen[2]
    assert [m["role"] for m in seen] == ["user", "user", "assistant", "tool", "assistant", "user"]
    assert seen[3]["content"] == "5" and seen[-1]["content"] == "And again?"
    assert len((await client.conversations.items.list(conversation.id, limit=100)).data) == 7


async def test_conversation_and_item_endpoints(client: openai.AsyncOpenAI) -> None:
    conversation = await client.conversations.create()
    added = await client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "user", "content": "one"},
            {"type": "message", "role": "user", "content": "two"},
        ],
    )
    first, second = added.data
    got = await client.conversations.items.retrieve(second.id, conversation_id=conversation.id)
    assert got.id == second.id and got.content[0].text == "two"
    await client.conversations.items.delete(first.id, conversation_id=conversation.id)
    assert [i.id for i in (await client.conversations.items.list(conversation.id)).data] == [second.id]
    updated = await client.conversations.update(conversation.id, metadata={"k": "v"})
    assert (await client.conversations.retrieve(conversation.id)).metadata == updated.metadata == {"k": "v"}
    deleted = await client.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conversation.id)


async def test_a_conversation_that_does_not_exist_or_beside_previous_response_id_is_refused(
    client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as missing:  # as an unknown previous_response_id
        await client.responses.create(model="scripted", input="hi", tools=TOOLS, conversation="conv_nope")
    assert (missing.value.body["param"], missing.value.body["code"]) == (
        "conversation",
        "conversation_not_found",
    )
    conversation = await client.conversations.create()
    with pytest.raises(openai.BadRequestError) as both:
        await client.responses.create(
            model="scripted",
            input="hi",
            tools=TOOLS,
            conversation=conversation.id,
            previous_response_id="resp_x",
        )
    assert both.value.body["param"] == "conversation"
