"""``/mcp`` and API keys in process: the plugin's real routes, gateway, store and stdio MCP
servers on a loopback uvicorn, a scripted engine, and the real ``mcp`` SDK and ``openai`` SDK as
clients. Two keys: ``key-a`` may use everything, ``key-b`` only the calculator's ``add``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.support.asgi import loopback, plugin_app
from tests.support.scripted import ScriptedTurns, tool_call
from vllm_mcp_ext.access import hash_key
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.observe import metrics
from vllm_mcp_ext.types.parts import TextDelta

ROOT = Path(__file__).resolve().parents[2]
CALC = StdioServerSpec("calc", sys.executable, (str(ROOT / "examples" / "servers" / "calculator.py"),))
PERMISSIONS = {
    "key-a": {"servers": ["back", "calc"]},
    f"sha256:{hash_key('key-b')}": {"servers": {"calc": ["add"]}},
}
WAIT = 10.0
# One app and its stdio servers serve the whole module, and one test grows a server's tool list
# (tools/list_changed) for good: the module keeps its file order, the listing first.
pytestmark = pytest.mark.random_order(disabled=True)


def backend(markers: Path) -> StdioServerSpec:
    return StdioServerSpec(
        "back", sys.executable, ("-m", "tests.unit.servers.gateway_backend", str(markers)), cwd=str(ROOT)
    )


@pytest.fixture(scope="module")
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway")


@pytest.fixture(scope="module")
def engine() -> ScriptedTurns:
    # every response of this module: a call to "calc__add" (unknown to a server named "calc",
    # where the tool is "add": the model is then told so), then the answer
    return ScriptedTurns([tool_call("calc__add", '{"a": 2, "b": 3}'), [TextDelta("It is 5.")]] * 8)


@pytest.fixture(scope="module")
async def base_url(engine: ScriptedTurns, tmp_path: Path) -> AsyncIterator[str]:
    """One app and its servers for the module: starting the stdio servers takes seconds."""
    servers = (backend(tmp_path), CALC)
    store = tmp_path / "responses.sqlite3"
    async with (
        plugin_app(engine, servers, store, api_keys=("key-a", "key-b"), permissions=PERMISSIONS) as app,
        loopback(app) as url,
    ):
        yield url


@asynccontextmanager
async def mcp_client(
    base_url: str, key: str, on_message: Callable[[Any], Any] | None = None
) -> AsyncIterator[ClientSession]:
    async def handler(message: Any) -> None:
        if on_message is not None:
            on_message(message)

    headers = {"Authorization": f"Bearer {key}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write, message_handler=handler) as session,
    ):
        await session.initialize()
        yield session


def sdk(base_url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)


async def names(session: ClientSession) -> list[str]:
    return [t.name for t in (await session.list_tools()).tools]


def text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            await asyncio.sleep(0.05)


# -- /mcp ----------------------------------------------------------------------------------------


async def test_mcp_lists_every_server_under_its_label_and_calls_through(base_url: str) -> None:
    async with mcp_client(base_url, "key-a") as session:
        listed = await names(session)
        assert listed == [
            "back__add",
            "back__divide",
            "back__steps",
            "back__wait",
            "back__grow",
            "calc__add",
            "calc__multiply",
            "calc__divide",
            "calc__crash",
        ]
        assert text(await session.call_tool("calc__multiply", {"a": 6, "b": 7})) == "42"
        assert text(await session.call_tool("back__add", {"a": 2, "b": 3})) == "5"


async def test_a_tool_error_and_an_unknown_tool_come_back_as_failed_results(base_url: str) -> None:
    async with mcp_client(base_url, "key-a") as session:
        failed = await session.call_tool("back__divide", {"a": 1, "b": 0})
        assert failed.is_error and "division by zero" in text(failed)
        unknown = await session.call_tool("nowhere__add", {"a": 1, "b": 2})
        assert unknown.is_error and "nowhere__add" in text(unknown)


async def test_progress_of_the_server_reaches_the_client(base_url: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with mcp_client(base_url, "key-a") as session:
        result = await session.call_tool("back__steps", {}, progress_callback=progress)
    assert text(result) == "stepped"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_a_client_that_cancels_a_call_cancels_it_on_the_server(base_url: str, tmp_path: Path) -> None:
    async with mcp_client(base_url, "key-a") as session:
        call = asyncio.create_task(session.call_tool("back__wait", {"tag": "gw"}))
        await until((tmp_path / "gw.started").exists)
        call.cancel()
        await until((tmp_path / "gw.cancelled").exists)
        assert text(await session.call_tool("back__add", {"a": 1, "b": 1})) == "2"  # the session goes on


async def test_list_changed_of_a_server_reaches_the_client(base_url: str) -> None:
    changed = asyncio.Event()

    def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with mcp_client(base_url, "key-a", on_message) as session:
        assert "back__late" not in await names(session)
        assert text(await session.call_tool("back__grow", {})) == "grown"
        async with asyncio.timeout(WAIT):
            await changed.wait()
        assert "back__late" in await names(session)


async def test_mcp_refuses_a_request_without_a_valid_key(base_url: str) -> None:
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await http.post(f"{base_url}/mcp", json={}, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "invalid_api_key"


async def test_a_key_sees_and_calls_only_what_it_is_granted_on_mcp(base_url: str) -> None:
    async with mcp_client(base_url, "key-b") as session:
        assert await names(session) == ["calc__add"]
        refused = await session.call_tool("calc__multiply", {"a": 2, "b": 3})
        assert refused.is_error and "calc__multiply" in text(refused)
        assert text(await session.call_tool("calc__add", {"a": 2, "b": 3})) == "5"


# -- /v1/responses -------------------------------------------------------------------------------


async def test_a_forbidden_label_is_a_403_naming_it(base_url: str) -> None:
    tools: Any = [{"type": "mcp", "server_label": "back", "require_approval": "never"}]
    with pytest.raises(openai.PermissionDeniedError) as info:
        await sdk(base_url, "key-b").responses.create(model="scripted", input="2+3?", tools=tools)
    error = info.value.body
    assert isinstance(error, dict) and "'back'" in error["message"]
    assert error["code"] == "server_not_permitted"


async def test_a_forbidden_label_is_refused_on_the_chat_and_messages_doors_too(base_url: str) -> None:
    tools: Any = [{"type": "mcp", "server_label": "back", "require_approval": "never"}]
    with pytest.raises(openai.PermissionDeniedError) as info:
        await sdk(base_url, "key-b").chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "2+3?"}], tools=tools
        )
    error = info.value.body
    assert isinstance(error, dict) and "'back'" in error["message"]
    messages = anthropic.AsyncAnthropic(base_url=base_url, auth_token="key-b", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await messages.beta.messages.create(
            model="scripted",
            max_tokens=64,
            messages=[{"role": "user", "content": "2+3?"}],
            mcp_servers=[{"type": "url", "url": "tool-server://back", "name": "back"}],
            tools=[{"type": "mcp_toolset", "mcp_server_name": "back"}],
            betas=["mcp-client-2025-11-20"],
        )
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "permission_error"
    assert "'back'" in body["error"]["message"]
    granted = await sdk(base_url, "key-a").chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "2+3?"}], tools=tools
    )
    assert granted.choices[0].message.content


async def test_a_granted_server_shows_only_the_granted_tools(base_url: str) -> None:
    tools: Any = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
    r = await sdk(base_url, "key-b").responses.create(model="scripted", input="2+3?", tools=tools)
    listing = r.output[0]
    assert listing.type == "mcp_list_tools" and [t.name for t in listing.tools] == ["add"]


async def test_server_url_mcp_is_every_server_in_process(base_url: str) -> None:
    tools: Any = [
        {
            "type": "mcp",
            "server_label": "all",
            "server_url": "/mcp",
            "allowed_tools": ["calc__add", "back__add"],
            "require_approval": "never",
        }
    ]
    r = await sdk(base_url, "key-a").responses.create(model="scripted", input="2+3?", tools=tools)
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert [t.name for t in r.output[0].tools] == ["back__add", "calc__add"]
    call = r.output[1]
    assert (call.server_label, call.name, call.output) == ("all", "calc__add", "5")


async def test_server_url_mcp_lists_only_what_the_key_may_use(base_url: str) -> None:
    tools: Any = [
        {
            "type": "mcp",
            "server_label": "all",
            "server_url": "http://localhost/mcp",
            "require_approval": "never",
        }
    ]
    r = await sdk(base_url, "key-b").responses.create(model="scripted", input="2+3?", tools=tools)
    assert [t.name for t in r.output[0].tools] == ["calc__add"]


async def test_another_key_cannot_reach_a_stored_response(base_url: str) -> None:
    tools: Any = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
    owner, other = sdk(base_url, "key-a"), sdk(base_url, "key-b")
    r = await owner.responses.create(model="scripted", input="2+3?", tools=tools)
    for attempt in (
        other.responses.retrieve(r.id),
        other.responses.input_items.list(r.id),
        other.responses.cancel(r.id),
        other.responses.delete(r.id),
    ):
        with pytest.raises(openai.NotFoundError):
            await attempt
    with pytest.raises(openai.BadRequestError) as info:
        await other.responses.create(model="scripted", input="again", tools=tools, previous_response_id=r.id)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "previous_response_not_found"
    assert (await owner.responses.retrieve(r.id)).output_text == "It is 5."
    assert [i.type for i in (await owner.responses.input_items.list(r.id)).data] == ["message"]


async def test_another_key_cannot_reach_a_conversation(base_url: str) -> None:
    tools: Any = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
    owner, other = sdk(base_url, "key-a"), sdk(base_url, "key-b")
    conversation = await owner.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Call me Ada."}]
    )
    for attempt in (
        other.conversations.retrieve(conversation.id),
        other.conversations.update(conversation.id, metadata={"x": "y"}),
        other.conversations.items.list(conversation.id),
        other.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": "Hi"}]
        ),
        other.conversations.delete(conversation.id),
    ):
        with pytest.raises(openai.NotFoundError):
            await attempt
    with pytest.raises(openai.BadRequestError) as info:
        await other.responses.create(
            model="scripted", input="2+3?", tools=tools, conversation=conversation.id
        )
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "conversation_not_found"
    items = await owner.conversations.items.list(conversation.id)
    assert [i.type for i in items.data] == ["message"]  # nothing the other key tried got in
    assert (await owner.conversations.retrieve(conversation.id)).metadata == {}


# -- /metrics ------------------------------------------------------------------------------------


def sample(metric: str, name: str, labels: dict[str, str]) -> float | None:
    """A sample of one of the plugin's metrics, read from the metric itself: an in-process vLLM
    engine earlier in the session unregisters ``vllm:*`` collectors from the default registry
    (the e2e suite scrapes a real server's ``/metrics`` instead)."""
    for family in metrics.collectors()[metric].collect():
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def calls(server: str, tool: str, outcome: str) -> float:
    labels = {"server": server, "tool": tool, "outcome": outcome}
    return sample("calls", "vllm:mcp_tool_calls_total", labels) or 0.0


async def test_calls_are_counted_by_server_tool_and_outcome(base_url: str) -> None:
    before = calls("back", "divide", "ok"), calls("back", "divide", "error")
    async with mcp_client(base_url, "key-a") as session:
        await session.call_tool("back__divide", {"a": 4, "b": 2})
        await session.call_tool("back__divide", {"a": 1, "b": 0})
        await session.call_tool("back__divide", {"a": 1, "b": 0})
    assert (calls("back", "divide", "ok"), calls("back", "divide", "error")) == (before[0] + 1, before[1] + 2)
    count = sample(
        "duration", "vllm:mcp_tool_call_duration_seconds_count", {"server": "back", "tool": "divide"}
    )
    assert count is not None and count >= 3
