"""The calculator's tools, names, schemas and descriptions unchanged (so the tiny model calls them
as it was trained to), served as MCP tasks (2025-11-25): the server declares
``tasks.requests.tools.call``, `add` and `multiply` may run as tasks, `divide` only as one.

Built on the SDK's low-level server, which has no task support: a middleware answers a
tools/call that carries ``params.task`` with a `CreateTaskResult` and runs the tool in the
background; ``tasks/get``, ``tasks/result`` and ``tasks/cancel`` are request handlers of their own.

- `add` takes `STEP` seconds and reports progress (1/2, 2/2); while ``<marker>.hold`` exists it
  waits until cancelled (cancel tests).
- `multiply` needs input: the task goes ``input_required`` and ``tasks/result`` asks the client
  (``elicitation/create``, the order form of tests/e2e/servers/asking.py) before it finishes.
- `divide` runs only as a task; `crash` never runs as one.

Every task method the server sees is appended to ``<marker>`` (``tasks/get <id> <status>``,
``tasks/cancel <id>``, ...), so a test can read what the server saw. Tasks live in a `Tasks`
store that outlives one connection (a reconnecting client polls the same ids).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "servers"))
import calculator
from asking import Order

STEP = 1.0  # seconds `add` takes
POLL_INTERVAL_MS = 200
ELICIT_MESSAGE = "How many, and gift wrapped?"
TASK_CAPABILITY = types.ServerTasksCapability(
    requests=types.ServerTasksRequestsCapability(
        tools=types.TasksToolsCapability(call=types.TasksCallCapability())
    ),
    cancel=types.TasksCancelCapability(),
)
Record = Callable[[str], None]


SUPPORT = {"add": "optional", "multiply": "optional", "divide": "required"}  # crash: never a task


async def tools() -> list[types.Tool]:
    """The example calculator's tools as it lists them, each with its task support."""
    listed = await calculator.server.list_tools()
    return [
        t.model_copy(update={"execution": types.ToolExecution(task_support=SUPPORT[t.name])})  # type: ignore[arg-type]
        if t.name in SUPPORT
        else t
        for t in listed
    ]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    """A result as the calculator's: text, and the structured ``result`` its outputSchema names."""
    structured = None if error else {"result": text}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=structured, is_error=error
    )


@dataclass
class Job:
    task: types.Task
    done: asyncio.Event = field(default_factory=asyncio.Event)
    result: types.CallToolResult | None = None
    runner: asyncio.Task[None] | None = None
    answer: asyncio.Future[types.ElicitResult] | None = None  # set while input_required

    def status(self, status: Any, message: str | None = None) -> None:
        self.task = self.task.model_copy(
            update={"status": status, "status_message": message, "last_updated_at": _now()}
        )


class Tasks:
    """The server's tasks, by id; one store for every connection of one server process."""

    def __init__(self, step: float = STEP, hold: Path | None = None, record: Record = lambda _: None):
        self.step = step
        self.hold = hold
        self.record = record
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def create(self, name: str, args: Mapping[str, Any], ttl: int | None, progress: Any, session: Any) -> Job:
        task_id = f"task-{next(self._ids)}"
        now = _now()
        task = types.Task(
            task_id=task_id,
            status="working",
            created_at=now,
            last_updated_at=now,
            ttl=ttl,
            poll_interval=POLL_INTERVAL_MS,
        )
        job = self.jobs[task_id] = Job(task)
        job.runner = asyncio.create_task(self._run(job, name, dict(args), progress, session))
        self.record(f"tools/call {name} as {task_id}")
        return job

    def job(self, task_id: str) -> Job:
        job = self.jobs.get(task_id)
        if job is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown task {task_id}")
        return job

    async def _run(self, job: Job, name: str, args: dict[str, Any], progress: Any, session: Any) -> None:
        try:
            job.result = await self._tool(job, name, args, progress, session)
            job.status("failed" if job.result.is_error else "completed")
        except asyncio.CancelledError:
            job.status("cancelled", "cancelled by the client")
        except Exception as exc:
            job.result = _text(f"error: {exc}", error=True)
            job.status("failed", str(exc))
        finally:
            job.done.set()

    async def _tool(
        self, job: Job, name: str, args: dict[str, Any], progress: Any, session: Any
    ) -> types.CallToolResult:
        a, b = int(args.get("a", 0)), int(args.get("b", 0))
        if name == "add":
            for step in (1, 2):
                await asyncio.sleep(self.step / 2)
                if progress is not None:
                    await session.send_progress_notification(progress, step, 2, f"step {step}")
            while self.hold is not None and self.hold.exists():
                await asyncio.sleep(0.05)
            return _text(str(a + b))
        if name == "multiply":
            loop = asyncio.get_running_loop()
            job.answer = loop.create_future()
            job.status("input_required", "waiting for the order form")
            answer = await job.answer
            job.answer = None
            job.status("working")
            if answer.action != "accept":
                return _text(f"{a * b} (elicitation {answer.action})")
            return _text(
                f"{a * b} (elicitation accept {Order.model_validate(answer.content).model_dump_json()})"
            )
        if name == "divide":
            await asyncio.sleep(self.step / 2)
            if b == 0:
                return _text("division by zero", error=True)
            return _text(str(a / b))
        return _text(f"unknown tool {name}", error=True)


def build(tasks: Tasks) -> tuple[Server, InitializationOptions]:
    """The server and its initialization options (which declare task support)."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await tools())

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tasks.record(f"tools/call {params.name} plainly")
        args = params.arguments or {}
        if params.name == "divide":
            return _text("divide runs only as a task", error=True)
        if params.name == "crash":
            return _text("not here", error=True)
        if params.name == "add":
            return _text(str(int(args.get("a", 0)) + int(args.get("b", 0))))
        return _text(str(int(args.get("a", 0)) * int(args.get("b", 0))))

    async def as_task(ctx: Any, call_next: Any) -> Any:
        params = ctx.params
        if ctx.method != "tools/call" or not isinstance(params, Mapping) or "task" not in params:
            return await call_next(ctx)
        meta = params.get("_meta") or {}
        job = tasks.create(
            params["name"],
            params.get("arguments") or {},
            params["task"].get("ttl"),
            meta.get("progressToken"),
            ctx.session,
        )
        return types.CreateTaskResult(task=job.task).model_dump(by_alias=True, mode="json", exclude_none=True)

    async def get(ctx: Any, params: types.GetTaskRequestParams) -> types.GetTaskResult:
        job = tasks.job(params.task_id)
        tasks.record(f"tasks/get {params.task_id} {job.task.status}")
        return types.GetTaskResult(**job.task.model_dump())

    async def result(ctx: Any, params: types.GetTaskPayloadRequestParams) -> types.CallToolResult:
        job = tasks.job(params.task_id)
        tasks.record(f"tasks/result {params.task_id} {job.task.status}")
        while not job.done.is_set():
            if job.answer is not None and not job.answer.done():
                schema = Order.model_json_schema()
                answer = await ctx.session.elicit_form(
                    ELICIT_MESSAGE, schema, related_request_id=ctx.request_id
                )
                job.answer.set_result(answer)
            with anyio.move_on_after(0.05):
                await job.done.wait()
        if job.result is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"task {params.task_id} was {job.task.status}")
        return job.result

    async def cancel(ctx: Any, params: types.CancelTaskRequestParams) -> types.CancelTaskResult:
        job = tasks.job(params.task_id)
        tasks.record(f"tasks/cancel {params.task_id} {job.task.status}")
        if job.runner is not None and not job.done.is_set():
            job.runner.cancel()
            await job.done.wait()
        return types.CancelTaskResult(**job.task.model_dump())

    server = Server("calculator", on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware.append(as_task)
    server.add_request_handler("tasks/get", types.GetTaskRequestParams, get)
    server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, result)
    server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, cancel)
    options = server.create_initialization_options()
    options.capabilities.tasks = TASK_CAPABILITY
    return server, options


def main(marker: Path) -> None:
    from mcp.server.stdio import stdio_server

    def record(line: str) -> None:
        with marker.open("a") as f:
            f.write(line + "\n")

    async def serve() -> None:
        server, options = build(Tasks(hold=marker.with_suffix(".hold"), record=record))
        async with stdio_server() as (read, write):
            await server.run(read, write, options)

    anyio.run(serve)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
