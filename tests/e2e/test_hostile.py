"""A hostile MCP server and hostile requests against the real server (issue 14): real vLLM +
plugin, the hostile modes of tests/e2e/servers/remote_mcp.py reached through the suite's
allowlist, the real openai SDK. Nothing gets in, nothing stalls: each attack is a clear error on
its own item or request, and the server keeps answering everyone else meanwhile.

(The schema-reference attack is tested in process, tests/unit/test_hostile_inputs.py, against
the same hostile server: the tiny model only calls ``add`` for the calculator's exact schema.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.test_remote_mcp import calls, create, remote

pytestmark = pytest.mark.e2e


class HealthProbe:
    """Polls ``/health`` from a thread while an attack runs; the slowest answer it saw."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                start = time.monotonic()
                http.get(f"{self.base_url}/health")
                self.worst = max(self.worst, time.monotonic() - start)
                self._stop.wait(0.1)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(35)


def test_a_flood_of_tools_fails_the_listing_and_stalls_nobody(
    client: openai.OpenAI, vllm_server: str, remote_mcp_server: str
) -> None:
    with HealthProbe(vllm_server) as probe:
        r = create(
            client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/flood/mcp")], max_output_tokens=40
        )
    listing = r.output[0]
    assert listing.type == "mcp_list_tools" and listing.error is not None
    assert "8000 tools; at most 1024" in listing.error or "byte limit" in listing.error, listing.error
    assert calls(r) == []
    assert probe.worst < 5, probe.worst


@pytest.mark.parametrize(("mode", "expected"), [("gzip", "1000000-byte limit"), ("drip", "timed out")])
def test_bombs_and_drips_fail_the_call_within_the_limits(
    client: openai.OpenAI, vllm_server: str, remote_mcp_server: str, mode: str, expected: str
) -> None:
    with HealthProbe(vllm_server) as probe:
        started = time.monotonic()
        r = create(
            client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/{mode}/mcp")], max_output_tokens=80
        )
        took = time.monotonic() - started
    call = calls(r)[0]
    assert (call.name, call.status) == ("add", "failed")
    assert expected in str(call.error), call.error
    assert took < 30 and probe.worst < 5, (took, probe.worst)


def test_oversized_get_and_delete_bodies_do_not_break_the_server(
    client: openai.OpenAI, remote_mcp_server: str
) -> None:
    r = create(client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/fat/mcp")], max_output_tokens=80)
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "mcp_list_tools"
    again = create(client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/calc/mcp")])
    assert calls(again)[0].output == "5"


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_deeply_nested_request_is_a_400(vllm_server: str, depth: int) -> None:
    body = '{"model": "tiny", "input": "hi", "metadata": {"x": ' + "[" * depth + "]" * depth + "}}"
    r = httpx.post(
        f"{vllm_server}/v1/responses", content=body, headers={"content-type": "application/json"}, timeout=60
    )
    assert r.status_code == 400, r.text
    assert "nested more than 64 levels" in r.json()["error"]["message"]
