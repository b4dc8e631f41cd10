"""The client under test in the MCP conformance suite's client scenarios: our loop answering a
``/v1/responses`` request whose ``mcp`` tool points at the scenario's server.

The suite runs a command per scenario with the scenario server's URL as its last argument. A
process that imported the plugin would spend most of the scenario's time importing vLLM, so the
command is `forward.py` (standard library only), which hands the URL, the scenario name and its
context to the driver app here, served on loopback by the test process: each run builds the
plugin's real app (routes, responses service, tool-server registry, MCP sessions, OAuth) with
the scenario's server configured as a tool server, and posts one ``/v1/responses`` request
through it. The engine is scripted: the model calls the first tool the server offers, then
answers. A run is a success when the response completed and its tool listing and call did.

In the auth scenarios the server is configured with an ``oauth`` block as an operator would
write it (client credentials from the scenario's context). Where the authorization-code flow
needs a person at a browser, `follow_authorization` stands in: the suite's authorization server
approves at once, so following its redirect is all a person would do.
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
from tests.support.oauth import follow_authorization
from vllm_mcp_ext.config import HttpServerSpec
from vllm_mcp_ext.config.client_features import DEFAULT, ClientFeatures
from vllm_mcp_ext.config.oauth import OAuthConfig, parse_oauth
from vllm_mcp_ext.types.parts import Part, TextDelta, ToolCallDelta, TurnEnd, TurnRequest, TurnUsage

LABEL = "conformance"
# The client ID metadata document URL the suite's auth/basic-cimd expects a client to use.
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
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
        return HttpServerSpec(
            url=self.url,
            transport="streamable_http",
            label=LABEL,
            oauth=self.oauth(),
            features=FEATURES.get(self.name, DEFAULT),
        )

    def oauth(self) -> OAuthConfig | None:
        """The ``oauth`` block an operator would write for this server, secrets as ``${VAR}``
        (the scenario's context stands in for the environment)."""
        if not self.name.startswith("auth/"):
            return None
        context = self.context
        env = {
            "CLIENT_SECRET": context.get("client_secret", ""),
            "PRIVATE_KEY": context.get("private_key_pem", ""),
        }
        entry: dict[str, Any] = {"client_metadata_url": CLIENT_METADATA_URL}
        if self.name.startswith("auth/client-credentials-"):
            entry = {"grant": "client_credentials"}
        if "client_id" in context:
            entry = {**entry, "client_id": context["client_id"]}
            entry.pop("client_metadata_url", None)
        if "client_secret" in context:
            entry["client_secret"] = "${CLIENT_SECRET}"
        if "private_key_pem" in context:
            entry["private_key"] = "${PRIVATE_KEY}"
            entry["signing_algorithm"] = context.get("signing_algorithm", "RS256")
        return parse_oauth(entry, f"scenario {self.name}", env)


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
        plugin_app(
            CallFirstTool(),  # type: ignore[arg-type]
            (scenario.spec(),),
            store,
            authorizer=follow_authorization,
        ) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        answer = await client.post("/v1/responses", json=request, timeout=60)
    return judge(answer)


def judge(answer: httpx.Response) -> Outcome:
    if answer.status_code != 200:
        return Outcome(False, f"HTTP {answer.status_code}: {answer.text}")
    body = answer.json()
    mcp = [item for item in body.get("output", []) if item.get("type", "").startswith("mcp_")]
    failed = [item for item in mcp if item.get("error")]
    summary = json.dumps({"status": body.get("status"), "mcp_items": mcp}, indent=1)
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
