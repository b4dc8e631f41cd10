"""Past one process (docs/scale-out.md): two `vllm serve` replicas sharing one real PostgreSQL
store, the first with several API server processes (``--api-server-count 4``, or
``TEST_API_SERVER_COUNT``; on the 2-core machine 4 took as long as 2, side by side). Whatever
process or replica a request lands on, approvals, ``previous_response_id``, conversations,
background responses (followed and cancelled), sessionless ``/mcp`` requests and the MCP SDK's
session client at ``/mcp`` work, and every response names its prefix key and replica."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from tests.e2e.conftest import SERVERS, serve
from tests.support.ci import unavailable
from tests.support.postgres import binaries, postgres_server

pytestmark = pytest.mark.e2e

ASK = "What is 2 plus 3?"
SESSION, REPLICA = "x-vllm-mcp-session", "x-vllm-mcp-replica"
GATED = [{"type": "mcp", "server_label": "calc"}]  # every call waits for approval
OPEN = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
# API server processes of replica A
PROCESSES = int(os.environ.get("TEST_API_SERVER_COUNT", "4"))


@pytest.fixture(scope="module")
def replicas(
    tiny_model: Path, slow_marker: Path, logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(A, B): A runs ``PROCESSES`` API server processes; both keep responses in one PostgreSQL
    database."""
    if binaries() is None:
        unavailable("PostgreSQL is not installed (Debian's postgresql package)")
    config = tmp_path_factory.mktemp("scale") / "mcp.json"
    slow = [str(Path(__file__).parent / "servers" / "slow_calculator.py"), str(slow_marker)]
    servers = {
        "calc": {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]},
        "slowcalc": {"command": sys.executable, "args": slow},
        # one per API server process: its answer names the process that ran the call
        "where": {
            "command": sys.executable,
            "args": [str(Path(__file__).parent / "servers" / "api_process.py")],
        },
    }
    config.write_text(json.dumps({"mcpServers": servers}))
    with ExitStack() as stack:
        # a client's one connection stays with its process for the whole test (vLLM's default
        # keep-alive is 5 s: a test's pause would move it to whichever process accepts next)
        stack.enter_context(pytest.MonkeyPatch.context()).setenv("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "600")
        url = stack.enter_context(postgres_server())
        a, b = started_together(
            stack,
            serve(tiny_model, config, logs / "vllm-a.log", "--api-server-count", str(PROCESSES), store=url),
            serve(tiny_model, config, logs / "vllm-b.log", store=url),
        )
        every_process_ready(a)
        yield a, b


def started_together(stack: ExitStack, *servers: AbstractContextManager[str]) -> list[str]:
    """Start the servers at once (a minute saved per server); each one that started is stopped
    with ``stack``, also when another failed."""
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [pool.submit(server.__enter__) for server in servers]
    for server, future in zip(servers, futures, strict=True):
        if future.exception() is None:
            stack.push(server)
    return [future.result() for future in futures]


def every_process_ready(base_url: str, timeout: float = 120) -> None:
    """`serve` waited on one process; each process starts its own MCP servers. Ready when ten
    fresh connections in a row, wherever they land, find both servers ready."""
    deadline, in_a_row = time.monotonic() + timeout, 0
    while in_a_row < 10:
        assert time.monotonic() < deadline, "the API server processes' MCP servers did not start"
        servers = httpx.get(f"{base_url}/v1/mcp/servers", timeout=10).json()["data"]
        in_a_row = in_a_row + 1 if all(s["status"] == "ready" for s in servers) else 0
        time.sleep(0.1 if in_a_row else 0.5)


@pytest.fixture
def a(replicas: tuple[str, str]) -> Iterator[openai.OpenAI]:
    with client(replicas[0]) as one:
        yield one


@pytest.fixture
def b(replicas: tuple[str, str]) -> Iterator[openai.OpenAI]:
    with client(replicas[1]) as one:
        yield one


def client(base_url: str) -> openai.OpenAI:
    """One kept-alive connection: every request of this client lands on one API server process."""
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=600)
    http = httpx.Client(limits=one, timeout=120)
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="-", http_client=http, max_retries=0)


def create(client: openai.OpenAI, input: Any, tools: list[dict[str, Any]], **kw: Any):
    """The response and its affinity headers."""
    raw = client.responses.with_raw_response.create(
        model="tiny", input=input, tools=tools, temperature=0, **kw
    )
    return raw.parse(), (raw.headers.get(SESSION), raw.headers.get(REPLICA))


def approve(request_id: str) -> dict[str, Any]:
    return {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": True}


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_approval_asked_on_one_replica_is_answered_on_the_other(
    a: openai.OpenAI, b: openai.OpenAI
) -> None:
    asked, (key_a, replica_a) = create(a, ASK, GATED)
    assert [i.type for i in asked.output] == ["mcp_list_tools", "mcp_approval_request"]
    answered, (key_b, replica_b) = create(
        b, [approve(asked.output[1].id)], GATED, previous_response_id=asked.id
    )
    call = answered.output[0]
    assert (call.type, call.name, call.arguments, call.output) == ("mcp_call", "add", '{"a": 2, "b": 3}', "5")
    assert call.approval_request_id == asked.output[1].id
    # one prefix key for the conversation, wherever its turns ran; each replica names itself
    assert key_a == key_b == asked.id
    assert replica_a is not None and replica_b is not None and replica_a != replica_b


def test_previous_response_id_continues_on_the_other_replica(a: openai.OpenAI, b: openai.OpenAI) -> None:
    first, _ = create(b, ASK, OPEN)
    again = "And 2 plus 3 again?"
    # one turn each (no tool call), so input_tokens is one prompt: the same question alone, and
    # after the first exchange that the other replica ran and stored
    second, (key, _) = create(a, again, OPEN, previous_response_id=first.id, tool_choice="none")
    alone, _ = create(a, again, OPEN, tool_choice="none")
    assert second.previous_response_id == first.id and key == first.id
    # the tools are already in the conversation the other replica stored: not listed again
    assert [i.type for i in second.output if i.type == "mcp_list_tools"] == []
    assert second.usage.input_tokens > alone.usage.input_tokens + 20  # it saw the first exchange


def test_a_conversation_continues_on_either_replica(a: openai.OpenAI, b: openai.OpenAI) -> None:
    conversation = a.conversations.create()
    first, (key_a, _) = create(a, ASK, OPEN, conversation=conversation.id)
    second, (key_b, _) = create(b, ASK, OPEN, conversation=conversation.id)
    assert key_a == key_b == conversation.id
    items = b.conversations.items.list(conversation.id, order="asc", limit=100).data
    outputs = [i.id for i in [*first.output, *second.output]]
    assert [i.id for i in items if i.id in outputs] == outputs  # both replicas' items, in order
    assert len(items) == len(outputs) + 2  # and the two user messages
    # B's model saw A's exchange: its tool list is not listed again, its first prompt is longer
    assert [i.type for i in second.output if i.type == "mcp_list_tools"] == []
    assert first_prompt(b, second.id) > first_prompt(a, first.id) + 40


def test_a_background_response_started_on_one_replica_is_followed_and_cancelled_on_the_other(
    a: openai.OpenAI, b: openai.OpenAI, slow_marker: Path
) -> None:
    for suffix in (".started", ".cancelled"):
        slow_marker.with_suffix(suffix).unlink(missing_ok=True)
    queued, _ = create(a, ASK, [{"type": "mcp", "server_label": "slowcalc", "require_approval": "never"}],
                       background=True)  # fmt: skip
    wait_for(slow_marker.with_suffix(".started").exists, what="the slow tool to start")
    polled = b.responses.retrieve(queued.id)
    assert polled.status == "in_progress"
    assert [i.status for i in polled.output if i.type == "mcp_call"] == ["calling"]
    cancelled = b.responses.cancel(queued.id)
    assert cancelled.status == "cancelled"
    # the replica that runs it saw the flag and stopped the call, well before its 60 s sleep ends
    wait_for(slow_marker.with_suffix(".cancelled").exists, 15, "the MCP server to see the cancellation")
    assert b.responses.retrieve(queued.id).status == "cancelled"
    # its events, stored by A, replay from B
    with b.responses.retrieve(queued.id, stream=True, starting_after=0) as events:
        numbers = [e.sequence_number for e in events]
    assert len(numbers) >= 3 and numbers == list(range(1, len(numbers) + 1))


def test_api_server_processes_answer_each_others_approvals_and_continue_each_others_responses(
    replicas: tuple[str, str],
) -> None:
    """Over all of A's processes: the approval is asked on one and answered on a second, the
    conversation continued on each process it has not visited yet, then back on the first. A
    process keeps the trace of each response it ran in its memory: a connection that finds none of
    the conversation's traces is on a process the conversation has not visited."""
    base_url = replicas[0]
    with ExitStack() as stack:
        first = stack.enter_context(client(base_url))
        asked, _ = create(first, ASK, GATED)
        assert trace_status(first, asked.id) == 200
        second = stack.enter_context(on_another_process(base_url, [asked.id]))
        answered, (key, _) = create(
            second, [approve(asked.output[1].id)], GATED, previous_response_id=asked.id
        )
        call = answered.output[0]
        assert (call.type, call.output, call.approval_request_id) == ("mcp_call", "5", asked.output[1].id)
        assert key == asked.id
        ran, visited = [asked.id, answered.id], [first, second]
        for _ in range(PROCESSES - 2):
            process = stack.enter_context(on_another_process(base_url, ran))
            turn, (key, _) = create(process, "And 2 plus 3 again?", OPEN, previous_response_id=ran[-1])
            assert (turn.previous_response_id, turn.status, key) == (ran[-1], "completed", asked.id)
            ran.append(turn.id)
            visited.append(process)
        # and back: the first process continues what the last one ran
        last, _ = create(first, "And 2 plus 3 again?", OPEN, previous_response_id=ran[-1])
        assert last.previous_response_id == ran[-1] and last.status == "completed"
        assert [trace_status(process, last.id) for process in visited] == [200] + [404] * (PROCESSES - 1)


def test_the_gateway_answers_sessionless_requests_anywhere(replicas: tuple[str, str]) -> None:
    """``/mcp`` on two of A's processes: a 2026-07-28 request (no session) is answered wherever it
    lands."""
    base_url = replicas[0]
    with ExitStack() as stack:
        first = stack.enter_context(client(base_url))
        marker, _ = create(first, ASK, OPEN)  # its trace tells first's process from the others
        other = stack.enter_context(on_another_process(base_url, [marker.id]))
        for one in (first, other):
            called = gateway(one, "tools/call", {"name": "calc__add", "arguments": {"a": 2, "b": 3}})
            assert called.status_code == 200 and called.json()["result"]["content"] == [
                {"type": "text", "text": "5"}
            ]


def test_the_mcp_sdk_session_client_works_whichever_process_answers(replicas: tuple[str, str]) -> None:
    """The MCP SDK's streamable HTTP client as docs/gateway.md shows it (``initialize``, then
    requests), its requests spread over one kept-alive connection per process of A: every list and
    call succeeds, and the calls ran on more than one process (each process starts its own
    ``where`` server, which names its parent). With sessions kept per process the second request
    was a 404 (docs/scale-out.md)."""
    ran = anyio.run(sdk_session, f"{replicas[0]}/mcp")
    assert len(set(ran)) > 1, ran


async def sdk_session(url: str) -> list[str]:
    """What ``where__parent`` answered, call after call, in one session of the SDK's client."""
    ran: list[str] = []
    transport = RoundRobin(PROCESSES)
    async with (
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(120, read=300)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for n in range(2 * PROCESSES):
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"calc__add", "where__parent"} <= names, names
            added = await session.call_tool("calc__add", {"a": n, "b": 3})
            assert (added.is_error, added.content) == (
                False,
                [types.TextContent(type="text", text=f"{n + 3}")],
            )
            where = await session.call_tool("where__parent", {})
            assert not where.is_error and isinstance(where.content[0], types.TextContent), where
            ran.append(where.content[0].text)
    return ran


class RoundRobin(httpx.AsyncBaseTransport):
    """``count`` connections, each kept alive (one per pool), the requests sent on each in turn.
    A connection is opened while the ones before it are held, and vLLM accepts a connection on
    the process with the fewest open: they land on different processes."""

    def __init__(self, count: int):
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=600)
        self._pools = [httpx.AsyncHTTPTransport(limits=one) for _ in range(count)]
        self._sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pools[self._sent % len(self._pools)]
        self._sent += 1
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def gateway(
    one: openai.OpenAI,
    method: str,
    params: dict[str, Any] | None,
    protocol: str = "2026-07-28",
) -> httpx.Response:
    """One JSON-RPC message to ``/mcp`` over the client's one connection: sessionless (2026-07-28,
    its fields in ``_meta``) unless another ``protocol`` is given."""
    headers = {"Accept": "application/json, text/event-stream", "Mcp-Method": method}
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body |= {"id": 1, "params": params}
    if protocol == "2026-07-28":
        headers["Mcp-Protocol-Version"] = protocol
        body["params"] = {**(params or {}), "_meta": {
            PROTOCOL_VERSION_META_KEY: protocol,
            CLIENT_CAPABILITIES_META_KEY: {},
            CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
        }}  # fmt: skip
        if method == "tools/call":
            headers["Mcp-Name"] = str(body["params"]["name"])
    http: httpx.Client = one._client  # the client's one connection (openai's own calls prefix /v1)
    return http.post(f"{one.base_url}".removesuffix("/v1/") + "/mcp", json=body, headers=headers)


def on_another_process(base_url: str, response_ids: list[str], tries: int = 60) -> openai.OpenAI:
    """A client whose connection landed on a process that ran none of ``response_ids``."""
    for _ in range(tries):
        candidate = client(base_url)
        if all(trace_status(candidate, one) == 404 for one in response_ids):
            return candidate
        candidate.close()
    raise AssertionError(f"{tries} fresh connections all landed on processes that ran one of {response_ids}")


def first_prompt(client: openai.OpenAI, response_id: str) -> int:
    """The prompt tokens of the response's first model turn (its trace, on the process that ran it)."""
    trace = client.get(f"/mcp/traces/{response_id}", cast_to=httpx.Response).json()
    return trace["turns"][0]["prompt_tokens"]


def trace_status(client: openai.OpenAI, response_id: str) -> int:
    """200 on the process that ran ``response_id`` (it keeps the trace), 404 on another."""
    try:
        return client.get(f"/mcp/traces/{response_id}", cast_to=httpx.Response).status_code
    except openai.NotFoundError:
        return 404
