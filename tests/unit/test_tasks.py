"""Tool calls run as MCP tasks (`servers.tasks`): created, polled with backoff, their progress and
input requests answered, cancelled, and polled on across a re-opened session. The server is
tests/e2e/servers/tasks_calculator.py (2025-11-25), in memory, with a task store that outlives a
connection; cancellation, time and a dropped connection are also run against the 2026-07-28
extension's server (tests/unit/servers/tasks_extension.py, more in test_tasks_extension.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client._transport import TransportStreams
from mcp.shared.memory import create_client_server_memory_streams

from tests.e2e.servers import tasks_calculator
from tests.e2e.servers.tasks_calculator import Tasks
from tests.unit.servers import tasks_extension
from tests.unit.servers.tasks_extension import TasksExtension
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.client_features import DEFAULT, ClientFeatures, client_features
from vllm_mcp_ext.config.limits import Limits
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.servers import ServerConnection, transports
from vllm_mcp_ext.servers.session import McpSession, Timeouts
from vllm_mcp_ext.servers.tasks import POLL_FLOOR, Backoff, TaskPolling
from vllm_mcp_ext.servers.transports import Transport
from vllm_mcp_ext.types.client_handlers import ClientHandlers
from vllm_mcp_ext.types.source import CallFailed, Code

TIMEOUTS = Timeouts(open=20, initialize=20, list=10, call=30)
FAST = TaskPolling(cap=0.1)


class Wire:
    """In-memory transports to one task server; `drop` cuts the open one as a lost
    connection would (the server's task store lives on)."""

    def __init__(self, tasks: Any, build: Callable[[], tuple[Any, Any]] | None = None):
        self.tasks = tasks
        self.build = build or (lambda: tasks_calculator.build(tasks))  # (low-level server, options)
        self._cut: list[anyio.CancelScope] = []

    def transport(self) -> Transport:
        @asynccontextmanager
        async def open_streams() -> AsyncIterator[TransportStreams]:
            server, options = self.build()
            async with (
                create_client_server_memory_streams() as (client, (read, write)),
                anyio.create_task_group() as tg,
            ):
                self._cut.append(tg.cancel_scope)
                tg.start_soon(server.run, read, write, options)
                try:
                    yield client
                finally:
                    tg.cancel_scope.cancel()

        return Transport("stdio", open_streams)

    def drop(self, index: int = -1) -> None:
        self._cut[index].cancel()


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.changed.set()

    async def until(self, seen: Callable[[list[str]], bool]) -> None:
        async with asyncio.timeout(10):
            while not seen(self.lines):
                self.changed.clear()
                await self.changed.wait()


def server(step: float = 0.3, **kw: Any) -> tuple[Wire, Recorder]:
    record = Recorder()
    return Wire(Tasks(step=step, record=record, **kw)), record


@asynccontextmanager
async def opened(
    wire: Wire, features: ClientFeatures = DEFAULT, timeouts: Timeouts = TIMEOUTS
) -> AsyncIterator[McpSession]:
    session = McpSession("tasks", [wire.transport()], timeouts, features=features, polling=FAST)
    session.start("mcp-test:tasks")
    try:
        await session.wait_open()
        yield session
    finally:
        await session.close()


def text(result: Any) -> str:
    return "".join(b.text for b in result.content)


def methods(lines: list[str]) -> list[str]:
    """The record without repeated polls: what happened, in order."""
    out: list[str] = []
    for line in lines:
        if not out or out[-1] != line:
            out.append(line)
    return out


# -- polling ------------------------------------------------------------------------------------


async def test_a_task_call_is_polled_to_its_result_with_its_progress() -> None:
    wire, record = server()
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with opened(wire) as session:
        result = await session.call_tool("add", {"a": 2, "b": 3}, progress=progress)
    assert text(result) == "5" and not result.is_error
    assert methods(record.lines) == [
        "tools/call add as task-1",
        "tasks/get task-1 working",
        "tasks/get task-1 completed",
        "tasks/result task-1 completed",
    ]
    assert seen == [(1, 2, "step 1"), (2, 2, "step 2")]


async def test_a_failed_task_returns_the_tools_error_result() -> None:
    wire, _ = server()
    async with opened(wire) as session:
        result = await session.call_tool("divide", {"a": 1, "b": 0})
    assert (text(result), result.is_error) == ("division by zero", True)


async def test_input_required_is_answered_through_tasks_result_by_the_elicitation_policy() -> None:
    wire, record = server()
    async with opened(wire, ClientFeatures(elicitation="accept_defaults")) as session:
        result = await session.call_tool("multiply", {"a": 4, "b": 5})
    assert text(result) == '20 (elicitation accept {"quantity":2,"gift_wrap":false,"size":"medium"})'
    assert "tasks/get task-1 input_required" in record.lines
    assert record.lines[-1] == "tasks/result task-1 input_required"


# -- when not as a task ---------------------------------------------------------------------------


async def test_tasks_off_calls_an_optional_tool_plainly_and_fails_a_required_one_at_once() -> None:
    wire, record = server()
    async with opened(wire, ClientFeatures(tasks=False)) as session:
        plain = await session.call_tool("add", {"a": 2, "b": 3})
        with pytest.raises(CallFailed) as info:
            await session.call_tool("divide", {"a": 1, "b": 2})
    assert text(plain) == "5"
    assert info.value.message == (
        "tool 'divide' of MCP server 'tasks' runs only as a task, and tasks are turned off for "
        "this server ('tasks': false)"
    )
    assert record.lines == ["tools/call add plainly"]


async def test_a_tool_without_task_support_is_called_plainly() -> None:
    wire, record = server()
    async with opened(wire) as session:
        result = await session.call_tool("crash", {})
    assert (text(result), record.lines) == ("not here", ["tools/call crash plainly"])


# -- cancellation and time (both generations) ------------------------------------------------------

GENERATIONS = ("2025-11-25", "2026-07-28")


@asynccontextmanager
async def generation(
    version: str, tmp_path: Any, step: float = 0.3, hold: bool = False
) -> AsyncIterator[tuple[Wire, Recorder, ClientFeatures]]:
    """A task server of ``version``'s generation (2025: tasks_calculator; 2026: the tasks
    extension's, tests/unit/servers/tasks_extension.py), a recorder, and features that speak it.
    ``hold``: its ``add`` never completes."""
    if version == "2026-07-28":
        async with extension_server(step=step, hold=hold) as (wire, record):
            yield wire, record, ClientFeatures(protocol="auto")
        return
    kw: dict[str, Any] = {}
    if hold:
        kw["hold"] = tmp_path / "hold"
        kw["hold"].touch()
    wire, record = server(step=step, **kw)
    yield wire, record, DEFAULT


@asynccontextmanager
async def extension_server(**kw: Any) -> AsyncIterator[tuple[Wire, Recorder]]:
    record = Recorder()
    extension = TasksExtension(record, **kw)

    def build() -> tuple[Any, Any]:
        lowlevel = tasks_extension.build(extension)._lowlevel_server
        return lowlevel, lowlevel.create_initialization_options()

    try:
        yield Wire(extension, build), record
    finally:
        extension.close()


@pytest.mark.parametrize("version", GENERATIONS)
async def test_a_cancelled_caller_cancels_the_task_on_the_server(version: str, tmp_path: Any) -> None:
    async with generation(version, tmp_path, hold=True) as (wire, record, features):
        async with opened(wire, features) as session:
            call = asyncio.create_task(session.call_tool("add", {"a": 2, "b": 3}))
            await record.until(lambda lines: "tasks/get task-1 working" in lines)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        job = wire.tasks.jobs["task-1"]
        assert getattr(job, "task", job).status == "cancelled"  # 2025's job holds a Task
    assert record.lines[-1] == "tasks/cancel task-1 working"


@pytest.mark.parametrize("version", GENERATIONS)
async def test_a_task_past_the_call_timeout_is_cancelled_and_fails(version: str, tmp_path: Any) -> None:
    async with (
        generation(version, tmp_path, hold=True) as (wire, record, features),
        opened(wire, features) as session,
    ):
        with pytest.raises(CallFailed) as info:
            await session.call_tool("add", {"a": 2, "b": 3}, timeout=0.5)
    assert (info.value.rpc_code, info.value.message) == (
        Code.REQUEST_TIMEOUT,
        "tool call timed out after 0.5s",
    )
    assert record.lines[-1] == "tasks/cancel task-1 working"


@pytest.mark.parametrize("version", GENERATIONS)
async def test_a_task_calls_time_bound_stops_while_its_question_waits_for_the_user(
    version: str, tmp_path: Any
) -> None:
    """The task's ``input_required`` question answered by elicitation ``ask``: the user takes
    longer than the call timeout, which, as for a plain call, does not run meanwhile: neither
    the task's bound nor (2025-11-25) that of the tasks/result request the question comes in."""
    bound = 2.0
    order = {"quantity": 7, "gift_wrap": True, "size": "large"}

    async def user(params: types.ElicitRequestParams) -> types.ElicitResult:
        await asyncio.sleep(bound + 1.0)  # the user answers after the bound would have passed
        return types.ElicitResult(action="accept", content=order)

    async with generation(version, tmp_path, step=0.05) as (wire, record, features):
        asking = replace(features, elicitation="ask")
        async with opened(wire, asking, replace(TIMEOUTS, call=bound)) as session:
            result = await session.call_tool(
                "multiply", {"a": 4, "b": 5}, handlers=ClientHandlers(elicit=user)
            )
    assert (text(result), result.is_error) == (
        '20 (elicitation accept {"quantity":7,"gift_wrap":true,"size":"large"})',
        False,
    )
    assert not any(line.startswith("tasks/cancel") for line in record.lines)


# -- a dropped connection ---------------------------------------------------------------------


# each generation's last request for a completed task
DROPPED = [("2025-11-25", "tasks/result task-1 completed"), ("2026-07-28", "tasks/get task-1 completed")]


@pytest.mark.parametrize(("version", "last"), DROPPED)
async def test_a_dropped_connection_is_reopened_and_the_same_task_polled_to_its_result(
    version: str, last: str, tmp_path: Any
) -> None:
    async with (
        generation(version, tmp_path, step=1.0) as (wire, record, features),
        opened(wire, features) as first,
        opened(wire, features) as second,
    ):
        reopened: list[McpSession] = []

        async def reopen() -> McpSession:
            reopened.append(second)
            return second

        call = asyncio.create_task(first.call_tool("add", {"a": 2, "b": 3}, reopen=reopen))
        await record.until(lambda lines: "tasks/get task-1 working" in lines)
        wire.drop(0)  # the first session's connection
        result = await call
    assert text(result) == "5"
    assert reopened == [second]
    assert record.lines[-1] == last
    assert record.lines.count("tools/call add as task-1") == 1  # not run twice


@pytest.mark.parametrize(("version", "last"), DROPPED)
async def test_a_configured_server_polls_its_task_on_across_the_session_it_reopens(
    version: str, last: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with generation(version, tmp_path, step=1.0) as (wire, record, features):
        monkeypatch.setattr(transports, "configured", lambda *_: wire.transport())
        spec = StdioServerSpec(label="tasks", command="unused", features=features)
        conn = ServerConnection(spec, Settings(), Limits(max_task_poll_interval=0.1))
        conn.start()
        try:
            first = await conn.session()
            call = asyncio.create_task(conn.call_tool("add", {"a": 2, "b": 3}))
            await record.until(lambda lines: "tasks/get task-1 working" in lines)
            wire.drop()
            assert text(await call) == "5"
            assert (await conn.session()) is not first
        finally:
            await conn.stop()
    assert record.lines[-1] == last
    assert record.lines.count("tools/call add as task-1") == 1  # not run twice


async def test_without_a_way_to_reopen_a_dropped_connection_fails_the_call() -> None:
    wire, record = server(step=1.0)
    async with opened(wire) as session:
        call = asyncio.create_task(session.call_tool("add", {"a": 2, "b": 3}))
        await record.until(lambda lines: "tasks/get task-1 working" in lines)
        wire.drop()
        with pytest.raises(CallFailed) as info:
            await call
    assert info.value.rpc_code == Code.CONNECTION_CLOSED


# -- backoff and settings ---------------------------------------------------------------------


def test_polls_start_at_the_servers_interval_and_back_off_to_the_cap() -> None:
    backoff = Backoff(200, cap=1.0)
    assert [round(backoff.next(), 3) for _ in range(6)] == [0.2, 0.3, 0.45, 0.675, 1.0, 1.0]
    backoff.saw(_task(200), changed=True)  # a new status: back to the server's interval
    assert backoff.next() == 0.2


def test_a_servers_interval_is_kept_within_the_floor_and_the_cap() -> None:
    assert Backoff(1, cap=5.0).next() == POLL_FLOOR
    assert Backoff(60_000, cap=5.0).next() == 5.0
    assert Backoff(None, cap=5.0).next() == 0.5


def test_tasks_setting_and_poll_cap_are_read_and_checked() -> None:
    assert client_features({}, "s").tasks is True
    assert client_features({"tasks": False}, "s").tasks is False
    with pytest.raises(ConfigError, match="field 'tasks' must be true or false"):
        client_features({"tasks": "no"}, "s")
    assert Limits().max_task_poll_interval == 5.0
    assert Limits.load({"maxTaskPollInterval": 2}).max_task_poll_interval == 2.0
    with pytest.raises(ConfigError):
        Limits.load({}, env={"VLLM_MCP_MAX_TASK_POLL_INTERVAL": "-1"})


def _task(poll_interval: int) -> types.Task:
    return types.Task(
        task_id="t",
        status="working",
        created_at="",
        last_updated_at="",
        ttl=None,
        poll_interval=poll_interval,
    )
