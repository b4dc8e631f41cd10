"""The client under test in the MCP conformance suite's client scenarios: our loop answering a
``/v1/responses`` request whose ``mcp`` tool points at the scenario's server.

The suite runs a command per scenario with the scenario server's URL as its last argument. A
process that imported the plugin would spend most of the scenario's time importing vLLM, so the
command is `forward.py` (standard library only), which hands the URL, the scenario name and its
context to the driver app here, served on loopback by the test process: each run builds the
plugin's real app (routes, responses service, tool-server registry, MCP sessions, OAuth) with
the scenario's server configured as a tool server, and posts one ``/v1/responses`` request
through it. The engine is scripted: the model calls the first tool the server offers, then
answers. A run is a success when the response completed and its tool call (if any) did.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.asgi import BASE_URL, plugin_app
from vllm_mcp_ext.config import HttpServerSpec
from vllm_mcp_ext.config.client_features import DEFAULT, ClientFeatures
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta, TurnEnd, TurnRequest, TurnUsage

LABEL = "conformance"
logger = logging.getLogger(__name__)

# Arguments for the tools the scenarios offer; any other tool is called with {}.
ARGUMENTS: dict[str, dict[str, Any]] = {"add_numbers": {"a": 2, "b": 3}}
# The tool-server file's client features a scenario's server gets (config.client_features).
FEATURES: dict[str, ClientFeatures] = {
    "elicitation-sep1034-client-defaults": ClientFeatures(elicitation="accept_defaults"),
}


class CallFirstTool:
    """A model that calls the first tool it is offered, then says it is done: the scenario's
    tool is the one the suite checks for."""

    model_name = "scripted"

    def check_model(self, name: str | None) -> None:
        pass

    async def run_turn(self, turn: TurnRequest) -> Any:
        called = any(m.get("role") == "tool" for m in turn.messages)
        if turn.tools and not called:
            name = turn.tools[0]["function"]["name"]
            tool = turn.tool_servers.get(name, (LABEL, name))[1]
            yield ToolCallDelta(0, name, json.dumps(ARGUMENTS.get(tool, {})))
            yield TurnEnd("tool_calls", TurnUsage(prompt_tokens=1, output_tokens=1))
            return
        part: Part = TextDelta("done")
        yield part
        yield TurnEnd("stop", TurnUsage(prompt_tokens=1, output_tokens=1))


@dataclass(frozen=True)
class Scenario:
    url: str
    name: str
    context: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> HttpServerSpec:
        features = FEATURES.get(self.name, DEFAULT)
        return HttpServerSpec(url=self.url, transport="streamable_http", label=LABEL, features=features)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


async def run(scenario: Scenario, store: Path | None = None) -> Outcome:
    """One ``/v1/responses`` request through a fresh plugin app configured for the scenario."""
    request = {
        "model": "scripted",
        "input": "Use the tool.",
        "tools": [{"type": "mcp", "server_label": LABEL, "require_approval": "never"}],
    }
    async with (
        plugin_app(CallFirstTool(), (scenario.spec(),), store) as app,  # type: ignore[arg-type]
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        answer = await client.post("/v1/responses", json=request, timeout=60)
    return judge(answer)


def judge(answer: httpx.Response) -> Outcome:
    if answer.status_code != 200:
        return Outcome(False, f"HTTP {answer.status_code}: {answer.text}")
    body = answer.json()
    calls = [item for item in body.get("output", []) if item.get("type") == "mcp_call"]
    failed = [call for call in calls if call.get("error")]
    summary = json.dumps({"status": body.get("status"), "mcp_calls": calls}, indent=1)
    return Outcome(body.get("status") == "completed" and not failed, summary)


def driver_app(store_dir: Path) -> Starlette:
    """``POST /run`` {url, scenario, context} -> {ok, detail}: what `forward.py` calls."""
    runs = 0

    async def run_one(request: Request) -> JSONResponse:
        nonlocal runs
        runs += 1
        body = await request.json()
        scenario = Scenario(body["url"], body["scenario"], body.get("context") or {})
        try:
            outcome = await run(scenario, store_dir / f"run{runs}.sqlite3")
        except Exception as exc:  # the suite shows the client's output: say what broke
            logger.exception("conformance run failed")
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        return JSONResponse({"ok": outcome.ok, "detail": outcome.detail})

    return Starlette(routes=[Route("/run", run_one, methods=["POST"])])
