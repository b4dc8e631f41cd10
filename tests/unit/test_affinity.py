"""What a response tells a prefix-aware router (api/affinity.py, docs/scale-out.md): the
conversation's prefix key, the same on every turn of one chain, and the replica that ran it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.asgi import CALC, plugin_client
from tests.support.scripted import ScriptedTurns
from vllm_mcp_ext.api.affinity import replica_name
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.types.parts import TextDelta

SESSION, REPLICA = "x-vllm-mcp-session", "x-vllm-mcp-replica"
TOOLS = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = ScriptedTurns([[TextDelta(f"Answer {i}.")] for i in range(8)])
    async with plugin_client(engine, (CALC,), tmp_path / "responses.sqlite3") as client:
        client.app.state.vllm_mcp_ext.replica = "replica-a"  # type: ignore[attr-defined]
        yield client


async def create(http: httpx.AsyncClient, **body: object) -> httpx.Response:
    answer = await http.post(
        "/v1/responses", json={"model": "scripted", "input": "hi", "tools": TOOLS, **body}
    )
    assert answer.status_code == 200, answer.text
    return answer


async def test_every_turn_of_a_chain_carries_the_first_responses_id_and_the_replica(
    http: httpx.AsyncClient,
) -> None:
    first = await create(http)
    first_id = first.json()["id"]
    second = await create(http, previous_response_id=first_id)
    third = await create(http, previous_response_id=second.json()["id"], stream=True)
    assert [(a.headers[SESSION], a.headers[REPLICA]) for a in (first, second, third)] == [
        (first_id, "replica-a")
    ] * 3
    other = await create(http)
    assert other.headers[SESSION] == other.json()["id"] != first_id


async def test_a_background_response_carries_them_at_once(http: httpx.AsyncClient) -> None:
    first = await create(http)
    queued = await create(http, previous_response_id=first.json()["id"], background=True)
    assert queued.json()["status"] == "queued"
    assert (queued.headers[SESSION], queued.headers[REPLICA]) == (first.json()["id"], "replica-a")


async def test_a_conversations_key_is_its_id(http: httpx.AsyncClient) -> None:
    conversation = (await http.post("/v1/conversations", json={})).json()["id"]
    first = await create(http, conversation=conversation)
    second = await create(http, conversation=conversation)
    assert [first.headers[SESSION], second.headers[SESSION]] == [conversation, conversation]


async def test_a_request_refused_before_it_starts_carries_none(http: httpx.AsyncClient) -> None:
    refused = await http.post(
        "/v1/responses", json={"model": "scripted", "input": "hi", "tools": TOOLS, "previous_response_id": 7}
    )
    assert refused.status_code == 400 and SESSION not in refused.headers


def test_the_replica_is_the_operators_name_else_host_and_port() -> None:
    assert replica_name(None, 8000) == f"{socket.gethostname()}:8000"
    assert replica_name(Settings.from_env({"VLLM_MCP_REPLICA": "gpu-7"}).replica, 8000) == "gpu-7"
