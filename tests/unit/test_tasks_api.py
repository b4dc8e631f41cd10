"""Tool calls run as MCP tasks, as a client of the plugin's real app sees them (scripted engine,
the tasks calculator over stdio): a background response's task-run call completes after the
create request returned, and a tool that runs only as a task, on a server entry with
``tasks: false``, is an error item at once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tests.e2e.servers import tasks_calculator
from tests.support.asgi import plugin_client
from tests.support.scripted import tool_call
from tests.unit.test_server_requests import AskingModel
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.client_features import ClientFeatures
from vllm_mcp_ext.types.parts import TextDelta, TurnEnd, TurnUsage

SERVER = Path(tasks_calculator.__file__)


class CalcModel(AskingModel):
    """Calls ``tool`` of the tasks server with a=6, b=3 first, then answers."""

    async def run_turn(self, turn: Any) -> Any:
        if not any(m.get("role") == "tool" for m in turn.messages):
            for part in tool_call(self.tool, '{"a": 6, "b": 3}'):
                yield part
            yield TurnEnd("tool_calls", TurnUsage(prompt_tokens=10, output_tokens=3))
            return
        yield TextDelta("done")
        yield TurnEnd("stop", TurnUsage(prompt_tokens=30, output_tokens=2))


def spec(marker: Path, features: ClientFeatures = ClientFeatures()) -> StdioServerSpec:  # noqa: B008
    return StdioServerSpec(
        label="tasks", command=sys.executable, args=(str(SERVER), str(marker)), features=features
    )


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "scripted",
        "input": "go",
        "tools": [{"type": "mcp", "server_label": "tasks", "require_approval": "never"}],
        **extra,
    }


def mcp_call(response: dict[str, Any]) -> dict[str, Any]:
    return next(item for item in response["output"] if item["type"] == "mcp_call")


async def test_a_background_responses_task_call_runs_on_after_the_request_and_completes(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "seen"
    async with plugin_client(CalcModel("add"), (spec(marker),), store=tmp_path / "store.sqlite3") as http:
        created = (await http.post("/v1/responses", json=body(background=True))).json()
        assert created["status"] in ("queued", "in_progress")
        async with asyncio.timeout(60):
            while (done := (await http.get(f"/v1/responses/{created['id']}")).json())[
                "status"
            ] != "completed":
                await asyncio.sleep(0.1)
    call = mcp_call(done)
    assert (call["name"], call["status"], call["output"]) == ("add", "completed", "9")
    seen = marker.read_text().splitlines()
    assert seen[0] == "tools/call add as task-1" and seen[-1] == "tasks/result task-1 completed"
    assert "tasks/get task-1 working" in seen


async def test_a_task_only_tool_on_a_server_with_tasks_off_is_an_error_item(tmp_path: Path) -> None:
    marker = tmp_path / "seen"
    async with plugin_client(CalcModel("divide"), (spec(marker, ClientFeatures(tasks=False)),)) as http:
        answer = (await http.post("/v1/responses", json=body(), timeout=60)).json()
    call = mcp_call(answer)
    assert call["status"] == "failed" and call["output"] is None
    assert call["error"] == {
        "type": "mcp_protocol_error",
        "code": -32600,
        "message": "tool 'divide' of MCP server 'tasks' runs only as a task, and tasks are turned off "
        "for this server ('tasks': false)",
    }
    assert not marker.exists()  # the server was never asked
