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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conformance.client_driver import driver_app
from tests.support.asgi import loopback
from tests.support.node import CONFORMANCE, conformance_bin, node_env

HERE = Path(__file__).resolve().parent
EXPECTED_FAILURES = HERE / "client-expected-failures.yaml"
SCENARIO_TIMEOUT = 60  # seconds the suite gives our client per scenario

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


@pytest.fixture(scope="module")
async def driver_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with loopback(driver_app(tmp_path_factory.mktemp("conformance"))) as url:  # type: ignore[arg-type]
        yield url


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_client_scenario(scenario: str, driver_url: str, tmp_path: Path) -> None:
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
        str(tmp_path),
        env={**node_env(), "CONFORMANCE_DRIVER_URL": driver_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), SCENARIO_TIMEOUT + 30)
    report = output.decode(errors="replace")
    assert proc.returncode == 0, f"conformance scenario {scenario} failed:\n{report}"
