"""Tool calls a 2026-07-28 server makes tasks (the tasks extension, SEP-2663; `servers.tasks`):
the session declares the extension, follows a ``resultType: "task"`` answer by ``tasks/get`` to
its inline result, answers ``inputRequests`` by ``tasks/update``, cancels by ``tasks/cancel`` and
polls on across a re-opened session (those three in test_tasks.py, over both generations). The server is tests/unit/servers/tasks_extension.py, in
memory, with a task store that outlives a connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import ClientSession, types
from mcp.shared.inbound import MCP_NAME_HEADER

from tests.unit.test_tasks import Wire, extension_server, methods, opened, text
from vllm_mcp_ext.config.client_features import ClientFeatures, SamplingPolicy
from vllm_mcp_ext.servers.session import McpSession
from vllm_mcp_ext.servers.tasks import (
    CancelTask,
    DetailedTask,
    GetTask,
    TaskParams,
    UpdateTask,
    UpdateTaskParams,
)
from vllm_mcp_ext.types.client_handlers import ClientHandlers
from vllm_mcp_ext.types.source import CallFailed

MODERN = ClientFeatures(protocol="auto")


@asynccontextmanager
async def modern(wire: Wire, features: ClientFeatures = MODERN) -> AsyncIterator[McpSession]:
    async with opened(wire, features) as session:
        assert session._session is not None and session._session.protocol_version == "2026-07-28"
        yield session


async def test_a_call_the_server_makes_a_task_is_polled_to_its_inline_result() -> None:
    async with extension_server() as (wire, record), modern(wire) as session:
        result = await session.call_tool("add", {"a": 2, "b": 3})
    assert (text(result), result.is_error) == ("5", False)
    assert methods(record.lines) == [
        "tools/call add as task-1",
        "tasks/get task-1 working",
        "tasks/get task-1 completed",
    ]


async def test_input_requests_are_answered_once_by_the_elicitation_policy_through_tasks_update() -> None:
    features = ClientFeatures(protocol="auto", elicitation="accept_defaults")
    async with extension_server() as (wire, record), modern(wire, features) as session:
        result = await session.call_tool("multiply", {"a": 4, "b": 5})
    assert text(result) == '20 (elicitation accept {"quantity":2,"gift_wrap":false})'
    assert record.lines.count("tasks/update task-1 order-1 accept") == 1
    assert methods(record.lines) == [
        "tools/call multiply as task-1",
        "tasks/get task-1 working",
        "tasks/get task-1 input_required",
        "tasks/update task-1 order-1 accept",
        "tasks/get task-1 input_required",  # asked again until the server took the answer
        "tasks/get task-1 working",
        "tasks/get task-1 completed",
    ]


async def test_a_sampling_input_request_is_answered_by_the_calls_model_through_tasks_update() -> None:
    asked: list[tuple[str, int]] = []

    async def sample(server: str, params: types.CreateMessageRequestParams, budget: int) -> Any:
        asked.append((server, params.max_tokens))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="hi"),
            model="m",
            stop_reason="endTurn",
        )

    features = ClientFeatures(protocol="auto", sampling=SamplingPolicy())
    async with extension_server() as (wire, record), modern(wire, features) as session:
        result = await session.call_tool("greet", {}, handlers=ClientHandlers(sample=sample))
    assert text(result) == "sampled by m: 'hi'"
    assert asked == [("tasks", 64)]
    assert record.lines.count("tasks/update task-1 greet-1 None") == 1  # a sampling answer has no action


async def test_a_failed_task_fails_the_call_with_its_json_rpc_error() -> None:
    async with extension_server() as (wire, _), modern(wire) as session:
        with pytest.raises(CallFailed) as info:
            await session.call_tool("divide", {"a": 1, "b": 0})
    assert (info.value.rpc_code, info.value.message) == (-32603, "division by zero")


# -- when the answer is plain -----------------------------------------------------------------------


async def test_a_server_that_answers_plainly_gives_the_plain_result() -> None:
    async with extension_server() as (wire, record), modern(wire) as session:
        result = await session.call_tool("echo", {"text": "hi"})
    assert (text(result), record.lines) == ("hi", ["tools/call echo plainly"])


async def test_tasks_off_declares_no_extension_so_the_server_answers_plainly() -> None:
    async with (
        extension_server() as (wire, record),
        modern(wire, ClientFeatures(protocol="auto", tasks=False)) as session,
    ):
        result = await session.call_tool("add", {"a": 2, "b": 3})
    assert (text(result), record.lines) == ("5", ["tools/call add plainly"])


# -- HTTP routing -------------------------------------------------------------------------------------


async def test_task_requests_carry_the_task_id_as_mcp_name() -> None:
    """Streamable HTTP routes tasks/* by the ``Mcp-Name`` header (SEP-2663): the SDK sends it for
    a request type that names its param, as ours do."""
    sent: list[tuple[str, dict[str, str]]] = []

    class Dispatcher:
        async def send_raw_request(self, method: str, params: Any, opts: Any) -> dict[str, Any]:
            sent.append((method, opts.get("headers", {})))
            return {"taskId": "t-9", "status": "working"} if method == "tasks/get" else {}

    client = ClientSession(dispatcher=Dispatcher())  # type: ignore[arg-type]
    await client.send_request(GetTask(params=TaskParams(task_id="t-9")), DetailedTask)
    update = UpdateTaskParams(task_id="t-9", input_responses={})
    await client.send_request(UpdateTask(params=update), types.EmptyResult)
    await client.send_request(CancelTask(params=TaskParams(task_id="t-9")), types.EmptyResult)
    assert [(method, headers.get(MCP_NAME_HEADER)) for method, headers in sent] == [
        ("tasks/get", "t-9"),
        ("tasks/update", "t-9"),
        ("tasks/cancel", "t-9"),
    ]
