"""The MCP conformance suite's server scenarios against ``/mcp/<label>`` and ``/mcp``.

The plugin's app runs in process (its real routes, proxy and session layer; a scripted engine,
since no scenario makes the model generate) on a loopback uvicorn port, with the suite's own
reference server (`reference_server`, stdio) as ``ref`` and the example calculator as ``calc``.

- ``/mcp/ref`` is the reference server as itself: every scenario passes, the pending ones too
  (JSON Schema 2020-12, SSE polling), so what the proxy passes on is what the server said.
- ``/mcp`` is the aggregate, where a tool or prompt is named ``<label>__<name>``: a scenario that
  calls a tool or gets a prompt by its bare name cannot find it there (`BY_NAME`); every other
  scenario passes, ``dns-rebinding-protection`` included.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.asgi import loopback, plugin_app
from tests.support.node import CONFORMANCE, conformance_bin, node_env
from tests.support.scripted import ScriptedTurns
from vllm_mcp_ext.config import StdioServerSpec

ROOT = Path(__file__).resolve().parents[2]
REF = StdioServerSpec("ref", sys.executable, ("-m", "tests.conformance.reference_server"), cwd=str(ROOT))
CALC = StdioServerSpec("calc", sys.executable, (str(ROOT / "examples" / "servers" / "calculator.py"),))
SUITE_TIMEOUT = 540.0
ACTIVE = [
    "server-initialize",
    "logging-set-level",
    "ping",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "elicitation-sep1034-defaults",
    "server-sse-multiple-streams",
    "elicitation-sep1330-enums",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
]
PENDING = ["json-schema-2020-12", "server-sse-polling"]
# the scenarios that call a tool or get a prompt by the reference server's own name
BY_NAME = {
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "elicitation-sep1034-defaults",
    "elicitation-sep1330-enums",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
}

pytestmark = pytest.mark.skipif(
    not (CONFORMANCE / "node_modules").exists(), reason="run `python -m tests.support.node` first"
)


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with plugin_app(ScriptedTurns([]), (REF, CALC)) as app, loopback(app) as url:
        yield url


async def run_suite(url: str, suite: str, out: Path) -> dict[str, list[dict[str, object]]]:
    """``conformance server`` over one suite; each scenario's checks, by scenario."""
    process = await asyncio.create_subprocess_exec(
        *conformance_bin(),
        "server",
        "--url",
        url,
        "--suite",
        suite,
        "-o",
        str(out),
        env=node_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), SUITE_TIMEOUT)
    checks: dict[str, list[dict[str, object]]] = {}
    for path in sorted(out.glob("server-*/checks.json")):
        scenario = path.parent.name.removeprefix("server-").rsplit("-", 6)[0]  # less the timestamp
        checks[scenario] = json.loads(path.read_text())
    assert checks, output.decode(errors="replace")[-4000:]
    return checks


def failures(checks: dict[str, list[dict[str, object]]]) -> dict[str, list[dict[str, object]]]:
    return {
        name: [c for c in cs if c["status"] == "FAILURE"]
        for name, cs in checks.items()
        if any(c["status"] == "FAILURE" for c in cs)
    }


async def test_every_scenario_passes_through_mcp_label(base_url: str, tmp_path: Path) -> None:
    checks = await run_suite(f"{base_url}/mcp/ref", "active", tmp_path / "active")
    assert sorted(checks) == sorted(ACTIVE)
    assert failures(checks) == {}


async def test_the_pending_scenarios_pass_through_mcp_label_too(base_url: str, tmp_path: Path) -> None:
    checks = await run_suite(f"{base_url}/mcp/ref", "pending", tmp_path / "pending")
    assert sorted(checks) == sorted(PENDING)
    assert failures(checks) == {}
    schema = {c["id"]: c["status"] for c in checks["json-schema-2020-12"]}
    assert set(schema.values()) == {"SUCCESS"}


async def test_every_scenario_that_does_not_name_a_tool_or_prompt_passes_on_mcp(
    base_url: str, tmp_path: Path
) -> None:
    checks = await run_suite(f"{base_url}/mcp", "active", tmp_path / "aggregate")
    assert sorted(checks) == sorted(ACTIVE)
    failed = failures(checks)
    assert set(failed) <= BY_NAME, {k: v for k, v in failed.items() if k not in BY_NAME}
    assert all(c["status"] == "SUCCESS" for c in checks["dns-rebinding-protection"])
