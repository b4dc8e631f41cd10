"""One MCP endpoint, API keys and metrics on a real ``vllm serve --api-key``: the ``mcp`` SDK
client against ``/mcp`` (list, call, a tool error, a cancelled call; a resource, a prompt and a
sampling request of the conformance reference server), keys with different
grants on ``/mcp`` and ``/v1/responses``, another key's stored response out of reach on every
route, and ``/metrics`` after the calls.

This module starts its own server (about a minute of start-up): the session's servers run
without ``--api-key``, which every other e2e module relies on.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import REPO, SERVERS, serve
from tests.e2e.test_mcp_loop import mcp

pytestmark = pytest.mark.e2e

ASK = "What is 2 plus 3?"
KEY_A, KEY_B = "key-a-e2e", "key-b-e2e"  # a: both calculators; b: the calculator's add only
KEY_REF = "key-ref-e2e"  # the conformance reference server only


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway") / "slow"


@pytest.fixture(scope="module")
def gateway_server(tiny_model: Path, logs: Path, marker: Path) -> Iterator[str]:
    slow = REPO / "tests" / "e2e" / "servers" / "slow_calculator.py"
    config = {
        "mcpServers": {
            "calc": {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]},
            "slowcalc": {"command": sys.executable, "args": [str(slow), str(marker)]},
            "ref": {
                "command": sys.executable,
                "args": ["-m", "tests.conformance.reference_server"],
                "cwd": str(REPO),
            },
        },
        "permissions": {
            KEY_A: {"servers": ["calc", "slowcalc"]},
            KEY_B: {"servers": {"calc": ["add"]}},
            KEY_REF: {"servers": ["ref"]},
        },
    }
    path = marker.parent / "mcp.json"
    path.write_text(json.dumps(config))
    store = marker.parent / "responses.sqlite3"
    with serve(
        tiny_model, path, logs / "vllm-gateway.log", store=store, api_keys=(KEY_A, KEY_B, KEY_REF)
    ) as url:
        yield url


def sdk(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=120)


@asynccontextmanager
async def mcp_session(base_url: str, key: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    """As Cursor or Claude Desktop would connect: ``{"url": ".../mcp", "headers": {...}}``."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write, **callbacks) as session,
    ):
        await session.initialize()
        yield session


def text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def test_an_mcp_client_lists_calls_fails_and_cancels_through_mcp(
    gateway_server: str, marker: Path
) -> None:
    async with mcp_session(gateway_server, KEY_A) as session:
        names = [t.name for t in (await session.list_tools()).tools]
        assert names == [
            *(f"calc__{t}" for t in ("add", "multiply", "divide", "crash")),
            *(f"slowcalc__{t}" for t in ("add", "multiply", "divide", "crash")),
        ]
        assert text(await session.call_tool("calc__add", {"a": 2, "b": 3})) == "5"
        failed = await session.call_tool("calc__divide", {"a": 1, "b": 0})
        assert failed.is_error and "division by zero" in text(failed)
        call = asyncio.create_task(session.call_tool("slowcalc__add", {"a": 1, "b": 2}))
        await _until(marker.with_suffix(".started").exists)
        call.cancel()
        await _until(marker.with_suffix(".cancelled").exists)  # the server behind saw it cancelled


async def test_an_mcp_client_reads_a_resource_gets_a_prompt_and_answers_sampling_through_mcp(
    gateway_server: str,
) -> None:
    asked: list[Any] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params.messages[0].content)
        answer = types.TextContent(type="text", text="Paris")
        return types.CreateMessageResult(role="assistant", content=answer, model="the-client's")

    async with mcp_session(gateway_server, KEY_REF, sampling_callback=sampling) as session:
        read = await session.read_resource("test://static-text")
        assert read.contents == [
            types.TextResourceContents(
                uri="test://static-text",
                mime_type="text/plain",
                text="This is the content of the static text resource.",
            )
        ]
        prompt = await session.get_prompt("ref__test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        assert prompt.messages[0].content == types.TextContent(
            type="text", text="Prompt with arguments: arg1='a', arg2='b'"
        )
        sampled = await session.call_tool("ref__test_sampling", {"prompt": "Capital of France?"})
        assert text(sampled) == "LLM response: Paris"
    assert asked == [types.TextContent(type="text", text="Capital of France?")]


async def test_mcp_needs_a_key_and_shows_each_key_its_grant(gateway_server: str) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.post(f"{gateway_server}/mcp", json={})).status_code == 401
    async with mcp_session(gateway_server, KEY_B) as session:
        assert [t.name for t in (await session.list_tools()).tools] == ["calc__add"]


def test_responses_apply_each_keys_grant(gateway_server: str) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        sdk(gateway_server, KEY_B).responses.create(model="tiny", input=ASK, tools=[mcp("slowcalc")])
    assert isinstance(info.value.body, dict) and "'slowcalc'" in info.value.body["message"]
    own: Any = [mcp("all", server_url="/mcp")]
    for key, expected in ((KEY_A, 8), (KEY_B, 1)):
        r = sdk(gateway_server, key).responses.create(
            model="tiny", input=ASK, tools=own, max_output_tokens=32
        )
        listing = r.output[0]
        assert listing.type == "mcp_list_tools" and listing.server_label == "all"
        assert len(listing.tools) == expected


def test_another_key_cannot_reach_a_stored_response(gateway_server: str) -> None:
    owner, other = sdk(gateway_server, KEY_A), sdk(gateway_server, KEY_B)
    r = owner.responses.create(model="tiny", input=ASK, tools=[mcp("calc")], temperature=0)
    assert r.output_text == "2 plus 3 is 5."
    for attempt in (
        lambda: other.responses.retrieve(r.id),
        lambda: other.responses.input_items.list(r.id),
        lambda: other.responses.cancel(r.id),
        lambda: other.responses.delete(r.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    with pytest.raises(openai.BadRequestError) as info:
        other.responses.create(model="tiny", input=ASK, tools=[mcp("calc")], previous_response_id=r.id)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "previous_response_not_found"
    assert owner.responses.retrieve(r.id).output_text == r.output_text


def test_metrics_count_the_calls(gateway_server: str) -> None:
    sdk(gateway_server, KEY_A).responses.create(model="tiny", input=ASK, tools=[mcp("calc")], temperature=0)
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{gateway_server}/metrics").text)
    }

    def value(name: str, sample: str, **labels: str) -> float:
        found = [s.value for s in families[name].samples if s.name == sample and s.labels == labels]
        assert len(found) == 1, (sample, labels, families[name].samples)
        return found[0]

    assert (
        value("vllm:mcp_tool_calls", "vllm:mcp_tool_calls_total", server="calc", tool="add", outcome="ok")
        >= 1
    )
    duration = "vllm:mcp_tool_call_duration_seconds"
    assert value(duration, f"{duration}_count", server="calc", tool="add") >= 1
    lists = "vllm:mcp_tool_list_calls"
    assert value(lists, f"{lists}_total", server="calc", outcome="ok") >= 1
    turns = "vllm:mcp_loop_turns_per_response"
    assert value(turns, f"{turns}_count") >= 1
    assert value("vllm:mcp_pooled_sessions", "vllm:mcp_pooled_sessions", kind="configured") == 3


async def _until(check: Any, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.1)
