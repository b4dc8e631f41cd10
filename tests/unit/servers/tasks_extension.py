"""A 2026-07-28 MCP server that makes some tool calls tasks through the tasks extension
(``io.modelcontextprotocol/tasks``, SEP-2663), built with the SDK's server `Extension`: its
``intercept_tool_call`` answers a call of a task tool with ``resultType: "task"`` when the
request declares the extension, and ``tasks/get``, ``tasks/update`` and ``tasks/cancel`` are its
`MethodBinding`s. The answers are written here as the spec's JSON, not with the client's models.

The task store (`TasksExtension`) outlives a connection, so a client may poll a task on a new
one. Each task method it serves is recorded as one line ("tasks/get task-1 working").

- ``add``: a task, completed after ``step`` seconds (never while ``hold`` is set).
- ``multiply``: a task that asks for an order form (``inputRequests``, still listed for ``step``
  seconds after the answer came), then completes with the product and the answer it got by
  ``tasks/update``.
- ``greet``: a task that asks the client's model for a greeting (``sampling/createMessage``).
- ``divide``: a task; dividing by zero fails it with a JSON-RPC error.
- ``echo``: never a task.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequestParams, RequestParams

IDENTIFIER = "io.modelcontextprotocol/tasks"
ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "quantity": {"type": "integer", "default": 2},
        "gift_wrap": {"type": "boolean", "default": False},
    },
}
STAMP = "2026-12-07T10:00:00Z"
ORDER = {"mode": "form", "message": "How many, and gift wrapped?", "requestedSchema": ORDER_SCHEMA}
GREETING = {
    "messages": [{"role": "user", "content": {"type": "text", "text": "Say hello to the tool server."}}],
    "maxTokens": 64,
}
# what a task asks before it completes: tool -> (inputRequests key, request)
ASKS = {
    "multiply": ("order-1", {"method": "elicitation/create", "params": ORDER}),
    "greet": ("greet-1", {"method": "sampling/createMessage", "params": GREETING}),
}


class TaskId(RequestParams):
    task_id: str


class Update(TaskId):
    input_responses: dict[str, Any]


@dataclass
class Job:
    task_id: str
    status: str = "working"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] = field(default_factory=dict)
    answers: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    runner: asyncio.Task[None] | None = None

    def wire(self) -> dict[str, Any]:
        task: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status,
            "createdAt": STAMP,
            "lastUpdatedAt": STAMP,
            "ttlMs": 60_000,
            "pollIntervalMs": 50,
        }
        if self.status == "completed":
            task["result"] = self.result
        elif self.status == "failed":
            task["error"] = self.error
        elif self.status == "input_required":
            task["inputRequests"] = self.input_requests
        return task


class TasksExtension(Extension):
    identifier = IDENTIFIER

    def __init__(self, record: Callable[[str], None], step: float = 0.2, hold: bool = False):
        self.record = record
        self.step = step
        self.hold = hold
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def held(self) -> bool:
        """Whether tasks keep working, not completing (a subclass may ask elsewhere)."""
        return self.hold

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskId, self._get),
            MethodBinding("tasks/update", Update, self._update),
            MethodBinding("tasks/cancel", TaskId, self._cancel),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        try:
            require_client_extension(ctx, IDENTIFIER)
            declared = True
        except MCPError:
            declared = False
        if params.name == "echo" or not declared:
            self.record(f"tools/call {params.name} plainly")
            return await call_next(ctx)
        job = Job(f"task-{next(self._ids)}")
        self.jobs[job.task_id] = job
        job.runner = asyncio.get_running_loop().create_task(
            self._work(job, params.name, params.arguments or {})
        )
        self.record(f"tools/call {params.name} as {job.task_id}")
        return {"resultType": "task", **job.wire()}

    async def _work(self, job: Job, name: str, args: dict[str, Any]) -> None:
        await asyncio.sleep(self.step)
        while self.held():
            await asyncio.sleep(self.step)
        if name == "divide" and args["b"] == 0:
            job.error = {"code": -32603, "message": "division by zero"}
            job.status = "failed"
            return
        if name in ASKS:
            key, request = ASKS[name]
            job.input_requests = {key: request}
            job.status = "input_required"
            answer = (await job.answers.get())[key]
            await asyncio.sleep(self.step)  # the ack is eventually consistent: polls still see the ask
            job.input_requests = {}
            job.status = "working"
            await asyncio.sleep(self.step)
            if name == "multiply":
                said = f"{answer['action']} {json.dumps(answer.get('content'), separators=(',', ':'))}"
                text = f"{args['a'] * args['b']} (elicitation {said})"
            else:
                text = f"sampled by {answer['model']}: {answer['content']['text']!r}"
        else:
            text = str(args["a"] + args["b"]) if name == "add" else str(args["a"] / args["b"])
        job.result = {"content": [{"type": "text", "text": text}], "isError": False}
        job.status = "completed"

    def _job(self, params: TaskId) -> Job:
        job = self.jobs.get(params.task_id)
        if job is None:
            raise MCPError(code=-32602, message="Failed to retrieve task: Task not found")
        return job

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskId) -> HandlerResult:
        job = self._job(params)
        self.record(f"tasks/get {job.task_id} {job.status}")
        return {"resultType": "complete", **job.wire()}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: Update) -> HandlerResult:
        job = self._job(params)
        for key, answer in params.input_responses.items():
            self.record(f"tasks/update {job.task_id} {key} {answer.get('action')}")
        job.answers.put_nowait(params.input_responses)
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskId) -> HandlerResult:
        job = self._job(params)
        self.record(f"tasks/cancel {job.task_id} {job.status}")
        if job.runner is not None:
            job.runner.cancel()
        job.status = "cancelled"
        return {"resultType": "complete"}

    def close(self) -> None:
        for job in self.jobs.values():
            if job.runner is not None:
                job.runner.cancel()


def build(extension: TasksExtension) -> MCPServer:
    server = MCPServer("tasks-2026", extensions=[extension])

    @server.tool(description="Add two numbers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(description="Multiply two numbers.")
    def multiply(a: int, b: int) -> str:
        return str(a * b)

    @server.tool(description="Ask the client's model for a greeting.")
    def greet() -> str:
        return "no model to ask"

    @server.tool(description="Divide two numbers.")
    def divide(a: float, b: float) -> str:
        return str(a / b)

    @server.tool(description="Say it back.")
    def echo(text: str) -> str:
        return text

    return server
