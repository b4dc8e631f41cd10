"""``/mcp`` as a proxy in process: the plugin's real routes and session layer on a loopback
uvicorn, the conformance reference server (stdio) as ``ref`` and the calculator as ``calc``, the
real ``mcp`` SDK as client. ``key-a`` may use both servers, ``key-b`` only ``calc``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from tests.support.asgi import loopback, plugin_app
from tests.support.scripted import ScriptedTurns
from vllm_mcp_ext.access import hash_key
from vllm_mcp_ext.config import StdioServerSpec

ROOT = Path(__file__).resolve().parents[2]
REF = StdioServerSpec("ref", sys.executable, ("-m", "tests.conformance.reference_server"), cwd=str(ROOT))
CALC = StdioServerSpec("calc", sys.executable, (str(ROOT / "examples" / "servers" / "calculator.py"),))
BROKEN = StdioServerSpec("broken", sys.executable, ("-c", "raise SystemExit(1)"))  # never opens
PERMISSIONS = {
    "key-a": {"servers": ["ref", "calc", "broken"]},
    f"sha256:{hash_key('key-b')}": {"servers": ["calc"]},
}
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
SSE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    servers = (REF, CALC, BROKEN)
    async with (
        plugin_app(ScriptedTurns([]), servers, api_keys=("key-a", "key-b"), permissions=PERMISSIONS) as app,
        loopback(app) as url,
    ):
        yield url


@asynccontextmanager
async def client(url: str, key: str = "key-a", **callbacks: Any) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, **callbacks) as session,
    ):
        await session.initialize()
        yield session


def texts(blocks: list[Any]) -> list[str]:
    return [b.text for b in blocks if isinstance(b, types.TextContent)]


# -- resources, prompts, completion ------------------------------------------------------------


async def test_the_aggregate_reads_resources_by_their_own_uris(base_url: str) -> None:
    async with client(f"{base_url}/mcp") as session:
        listed = (await session.list_resources()).resources
        assert [r.uri for r in listed] == [
            "test://static-text",
            "test://static-binary",
            "test://watched-resource",
        ]
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["test://template/{id}/data"]
        read = await session.read_resource("test://static-text")
        assert read.contents == [
            types.TextResourceContents(
                uri="test://static-text",
                mime_type="text/plain",
                text="This is the content of the static text resource.",
            )
        ]
        data = (await session.read_resource("test://template/7/data")).contents[0]
        assert isinstance(data, types.TextResourceContents)
        assert json.loads(data.text) == {"id": "7", "templateTest": True, "data": "Data for ID: 7"}
        with pytest.raises(Exception, match="Resource not found: test://nowhere"):
            await session.read_resource("test://nowhere")
        await session.subscribe_resource("test://watched-resource")
        await session.unsubscribe_resource("test://watched-resource")


async def test_the_aggregate_names_prompts_by_label_and_completes_their_arguments(base_url: str) -> None:
    async with client(f"{base_url}/mcp") as session:
        names = [p.name for p in (await session.list_prompts()).prompts]
        assert names == [
            "ref__test_simple_prompt",
            "ref__test_prompt_with_arguments",
            "ref__test_prompt_with_embedded_resource",
            "ref__test_prompt_with_image",
        ]
        got = await session.get_prompt("ref__test_prompt_with_arguments", {"arg1": "hello", "arg2": "world"})
        assert texts([m.content for m in got.messages]) == [
            "Prompt with arguments: arg1='hello', arg2='world'"
        ]
        ref = types.PromptReference(type="ref/prompt", name="ref__test_prompt_with_arguments")
        completed = await session.complete(ref, {"name": "arg1", "value": "par"})
        assert completed.completion.values == ["paris", "park", "party"]
        unknown = types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
        assert (await session.complete(unknown, {"name": "arg1", "value": "p"})).completion.values == []
        with pytest.raises(Exception, match="Unknown prompt 'nowhere__x'"):
            await session.get_prompt("nowhere__x")


async def test_one_server_as_itself_at_its_label(base_url: str) -> None:
    async with client(f"{base_url}/mcp/ref") as session:
        tools = [t.name for t in (await session.list_tools()).tools]
        assert tools[:2] == ["test_simple_text", "test_image_content"] and "add" not in tools
        schema = next(
            t.input_schema for t in (await session.list_tools()).tools if t.name == "json_schema_2020_12_tool"
        )
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and "$defs" in schema
        got = await session.get_prompt("test_simple_prompt")
        assert texts([m.content for m in got.messages]) == ["This is a simple prompt for testing."]
        image = (await session.call_tool("test_image_content", {})).content[0]
        assert isinstance(image, types.ImageContent) and image.mime_type == "image/png"


# -- a server's requests to its client ---------------------------------------------------------


async def test_sampling_and_elicitation_reach_the_client_that_made_the_call(base_url: str) -> None:
    asked: list[Any] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params.messages[0].content)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="4"), model="me"
        )

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    async with client(
        f"{base_url}/mcp", sampling_callback=sampling, elicitation_callback=elicitation
    ) as session:
        sampled = await session.call_tool("ref__test_sampling", {"prompt": "2+2?"})
        assert texts(sampled.content) == ["LLM response: 4"]
        elicited = await session.call_tool("ref__test_elicitation", {"message": "Who are you?"})
        assert texts(elicited.content) == [
            'User response: action=accept, content={"username": "ada", "email": "ada@example.com"}'
        ]
    assert asked == [types.TextContent(type="text", text="2+2?"), "Who are you?"]


async def test_a_client_without_sampling_is_not_offered_to_the_server(base_url: str) -> None:
    async with client(f"{base_url}/mcp/ref") as session:
        refused = await session.call_tool("test_sampling", {"prompt": "2+2?"})
    assert refused.is_error


async def test_log_messages_and_progress_of_a_call_reach_its_client(base_url: str) -> None:
    logged: list[types.LoggingMessageNotificationParams] = []
    progress: list[tuple[float, float | None]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params)

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async with client(f"{base_url}/mcp", logging_callback=on_log) as session:
        await session.set_logging_level("debug")
        await session.call_tool("ref__test_tool_with_logging", {})
        await session.call_tool("ref__test_tool_with_progress", {}, progress_callback=on_progress)
    assert [(p.level, p.logger, p.data) for p in logged] == [
        ("info", "ref", "Tool execution started"),
        ("info", "ref", "Tool processing data"),
        ("info", "ref", "Tool execution completed"),
    ]
    assert progress == [(0, 100), (50, 100), (100, 100)]


async def test_a_server_that_is_down_is_left_out_and_its_calls_fail(base_url: str) -> None:
    async with client(f"{base_url}/mcp") as session:
        labels = {t.name.split("__")[0] for t in (await session.list_tools()).tools}
        assert labels == {"ref", "calc"}
        failed = await session.call_tool("broken__anything", {})
        assert failed.is_error and "MCP server 'broken' is unavailable" in texts(failed.content)[0]
        assert texts((await session.call_tool("calc__add", {"a": 1, "b": 2})).content) == ["3"]


# -- who may see what --------------------------------------------------------------------------


async def test_a_key_sees_no_resource_or_prompt_of_a_server_it_may_not_use(base_url: str) -> None:
    async with client(f"{base_url}/mcp", key="key-b") as session:
        assert (await session.list_resources()).resources == []
        assert (await session.list_prompts()).prompts == []
        with pytest.raises(Exception, match="Unknown resource: test://static-text"):  # calc's own answer
            await session.read_resource("test://static-text")
    async with httpx.AsyncClient() as http:
        forbidden = await http.post(
            f"{base_url}/mcp/ref", json=INIT, headers={**SSE, "Authorization": "Bearer key-b"}
        )
        unknown = await http.post(
            f"{base_url}/mcp/nope", json=INIT, headers={**SSE, "Authorization": "Bearer key-a"}
        )
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "server_not_permitted"
    assert unknown.status_code == 404 and "'nope'" in unknown.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/mcp", "/mcp/ref"])
async def test_a_request_naming_another_site_is_refused_before_the_key_is_read(
    base_url: str, path: str
) -> None:
    async with httpx.AsyncClient() as http:
        for headers in ({"Host": "evil.example.com"}, {"Origin": "http://evil.example.com"}):
            answer = await http.post(f"{base_url}{path}", json=INIT, headers={**SSE, **headers})
            assert answer.status_code == 403, headers
            assert answer.json()["error"]["code"] == "host_not_allowed"
        local = {**SSE, "Origin": "http://localhost:3000", "Authorization": "Bearer key-a"}
        assert (await http.post(f"{base_url}{path}", json=INIT, headers=local)).status_code == 200


# -- resumability ------------------------------------------------------------------------------


def events(body: str) -> list[dict[str, str]]:
    parsed = []
    for block in body.replace("\r\n", "\n").strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in block.splitlines()
        )
        parsed.append(fields)
    return parsed


async def first_message(http: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    """The first JSON-RPC message a resumed ``GET`` stream replays (the stream then stays open)."""
    async with asyncio.timeout(10), http.stream("GET", "/mcp/ref", headers=headers) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and line[6:].strip():
                return json.loads(line[6:])
    raise AssertionError("the stream ended with nothing replayed")


async def test_a_stream_resumes_after_its_last_event_id(base_url: str) -> None:
    headers = {**SSE, "Authorization": "Bearer key-a"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
        opened = await http.post("/mcp/ref", json=INIT)
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-11-25"}
        await http.post(
            "/mcp/ref", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
        )
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_simple_text"}}
        answered = events((await http.post("/mcp/ref", json=call, headers=session)).text)
        priming = answered[0]
        assert priming["id"] and priming.get("data", "") == "" and priming["retry"] == "1000"
        replayed = await first_message(http, {**session, "Last-Event-ID": priming["id"]})
    assert replayed["id"] == 1
    assert replayed["result"]["content"] == [
        {"type": "text", "text": "This is a simple text response for testing."}
    ]


# -- the 2026-07-28 generation -----------------------------------------------------------------


async def test_a_2026_request_needs_no_session(base_url: str) -> None:
    meta = {
        PROTOCOL_VERSION_META_KEY: "2026-07-28",
        CLIENT_CAPABILITIES_META_KEY: {},
        CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
    }
    headers = {**SSE, "Authorization": "Bearer key-a", "Mcp-Protocol-Version": "2026-07-28"}

    async def send(method: str, params: dict[str, Any], **more: str) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{base_url}/mcp", json=body, headers={**headers, "Mcp-Method": method, **more}
            )
        assert answer.status_code == 200, answer.text
        assert "mcp-session-id" not in answer.headers
        return answer.json()["result"]

    discovered = await send("server/discover", {})
    assert discovered["supportedVersions"] == ["2026-07-28"] and "tools" in discovered["capabilities"]
    called = await send(
        "tools/call", {"name": "calc__add", "arguments": {"a": 2, "b": 3}}, **{"Mcp-Name": "calc__add"}
    )
    assert called["content"] == [{"type": "text", "text": "5"}]
    read = await send("resources/read", {"uri": "test://static-text"}, **{"Mcp-Name": "test://static-text"})
    assert read["contents"][0]["text"] == "This is the content of the static text resource."


async def test_one_server_as_itself_says_what_that_server_serves(base_url: str) -> None:
    headers = {**SSE, "Authorization": "Bearer key-a"}

    async def capabilities(path: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{base_url}{path}", json=INIT, headers=headers)
        result: dict[str, Any] = json.loads(events(answer.text)[-1]["data"])["result"]
        return result["capabilities"]

    changes = {"listChanged": True}
    assert await capabilities("/mcp/calc") == {  # the calculator: no logging, completion, subscribe
        "prompts": changes,
        "resources": {**changes, "subscribe": False},
        "tools": changes,
    }
    assert await capabilities("/mcp/ref") == {
        "completions": {},
        "logging": {},
        "prompts": changes,
        "resources": {**changes, "subscribe": True},
        "tools": changes,
    }


# -- several API server processes: no sessions -------------------------------------------------


@pytest.fixture(scope="module")
async def stateless_url() -> AsyncIterator[str]:
    """The app as each process of ``vllm serve --api-server-count 2`` runs it."""
    async with plugin_app(ScriptedTurns([]), (REF, CALC), api_keys=("key-a",)) as app, loopback(app) as url:
        app.state.vllm_mcp_ext.api_processes = 2  # what plugin.init_state reads from vLLM's args
        yield url


async def test_with_several_processes_a_session_client_is_served_request_by_request(
    stateless_url: str,
) -> None:
    headers = {**SSE, "Authorization": "Bearer key-a"}
    async with httpx.AsyncClient() as http:
        opened = await http.post(f"{stateless_url}/mcp/ref", json=INIT, headers=headers)
        stream = await http.get(f"{stateless_url}/mcp", headers=headers)
    assert opened.status_code == 200 and "mcp-session-id" not in opened.headers  # nothing to route by
    assert json.loads(events(opened.text)[-1]["data"])["result"]["capabilities"] == {
        "completions": {},
        "prompts": {"listChanged": False},
        "resources": {"listChanged": False, "subscribe": False},
        "tools": {"listChanged": False},
    }
    assert (stream.status_code, stream.headers["allow"]) == (405, "POST")  # no session-wide stream
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with asyncio.timeout(60), client(f"{stateless_url}/mcp") as session:
        for n in range(3):
            tools = [t.name for t in (await session.list_tools()).tools]
            assert "calc__add" in tools and "ref__test_sampling" in tools
            added = await session.call_tool("calc__add", {"a": n, "b": 3})
            assert texts(added.content) == [str(n + 3)]
        # a call's progress still reaches its client, on the call's own response stream
        await session.call_tool("ref__test_tool_with_progress", {}, progress_callback=on_progress)
    assert progress == [0, 50, 100]


async def test_with_several_processes_what_needs_a_session_fails_at_once(stateless_url: str) -> None:
    asked: list[Any] = []

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"username": "ada", "email": "a@b.c"})

    async with (
        asyncio.timeout(60),
        client(f"{stateless_url}/mcp", elicitation_callback=elicitation) as session,
    ):
        # not relayed: the shared session offers the server no elicitation (by default), so the
        # server says so at once
        elicited = await session.call_tool("ref__test_elicitation", {"message": "Who are you?"})
        assert texts(elicited.content) == ["Elicitation not supported"]
        assert (await session.call_tool("ref__test_sampling", {"prompt": "2+2?"})).is_error
        with pytest.raises(MCPError, match="A resource subscription needs an MCP session"):
            await session.subscribe_resource("test://watched-resource")
        with pytest.raises(MCPError, match="A log level needs an MCP session"):
            await session.set_logging_level("debug")
    assert asked == []
