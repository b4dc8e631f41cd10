"""The MCP conformance suite's client scenarios (``@modelcontextprotocol/conformance``, pinned in
package.json) against our loop: per scenario the suite starts its server, runs `forward.py`,
which has the driver app in this process answer one ``/v1/responses`` request through the
plugin with that server configured (see client_driver.py), then judges what its server saw.

A scenario fails the test when the suite reports an unexpected failure, or a pass of one listed
in client-expected-failures.yaml (a stale entry). Needs the suite installed:
``python -m tests.support.node``.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.client_driver import driver_app
from tests.support.asgi import loopback
from tests.support.node import CONFORMANCE, conformance_bin, node_env

HERE = Path(__file__).resolve().parent
EXPECTED_FAILURES = HERE / "client-expected-failures.yaml"
SCENARIO_TIMEOUT = 60  # seconds the suite gives our client per scenario
PARALLEL = 3  # scenarios at a time (sse-retry measures a 500 ms reconnect: keep the load modest)

SCENARIOS = [
    "initialize",
    "tools_call",
    "sse-retry",
    "elicitation-sep1034-client-defaults",
    # 2025-11-25 and 2025-06-18
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
    # 2025-03-26 back-compat
    "auth/2025-03-26-oauth-metadata-backcompat",
    "auth/2025-03-26-oauth-endpoint-fallback",
    # the client-credentials extension
    "auth/client-credentials-basic",
    "auth/client-credentials-jwt",
    # draft and other extensions: expected failures allowed, each with a reason in the yaml
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/cross-app-access-complete-flow",
]

pytestmark = pytest.mark.skipif(
    not (CONFORMANCE / "node_modules" / ".bin" / "conformance").exists(),
    reason="the conformance suite is not installed: python -m tests.support.node",
)


@dataclass(frozen=True)
class Run:
    returncode: int | None
    report: str


async def run_scenario(scenario: str, driver_url: str, results: Path) -> Run:
    command = f"{sys.executable} {HERE / 'forward.py'}"
    proc = await asyncio.create_subprocess_exec(
        *conformance_bin(),
        "client",
        "--command",
        command,
        "--scenario",
        scenario,
        "--timeout",
        str(SCENARIO_TIMEOUT * 1000),
        "--expected-failures",
        str(EXPECTED_FAILURES),
        "-o",
        str(results),
        env={**node_env(), "CONFORMANCE_DRIVER_URL": driver_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), SCENARIO_TIMEOUT + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Run(None, f"the suite did not finish within {SCENARIO_TIMEOUT + 30}s")
    return Run(proc.returncode, output.decode(errors="replace"))


@pytest.fixture(scope="module")
async def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every scenario's run, PARALLEL at a time, against one driver app in this process."""
    work = tmp_path_factory.mktemp("conformance")
    slots = asyncio.Semaphore(PARALLEL)

    async def one(scenario: str, url: str) -> Run:
        async with slots:
            return await run_scenario(scenario, url, work / "results")

    async with loopback(driver_app(work)) as url:  # type: ignore[arg-type]
        done = await asyncio.gather(*(one(s, url) for s in SCENARIOS))
    return dict(zip(SCENARIOS, done, strict=True))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_client_scenario(scenario: str, runs: dict[str, Run]) -> None:
    run = runs[scenario]
    assert run.returncode == 0, f"conformance scenario {scenario} failed:\n{run.report}"
