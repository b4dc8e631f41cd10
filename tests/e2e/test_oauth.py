"""OAuth end to end: the vLLM server with the plugin answers /v1/responses requests that call
tools of a real MCP server behind a real authorization server on loopback
(tests/support/oauth_server.py): ``vault`` with client credentials (its secret from the
environment), ``vaultlogin`` with the authorization code, logged in to before the API server
started by the real login command (tests/e2e/conftest.py `main_config`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.oauth_server import CLIENT_SECRET

pytestmark = pytest.mark.e2e


def mcp(label: str) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "require_approval": "never"}


def calls(response: Any) -> list[tuple[str, str, str | None, Any]]:
    return [(i.server_label, i.name, i.output, i.error) for i in response.output if i.type == "mcp_call"]


def seen(oauth_server: str) -> dict[str, Any]:
    return httpx.get(f"{oauth_server}/state", timeout=10).json()


def test_a_response_calls_a_tool_behind_client_credentials(client: openai.OpenAI, oauth_server: str) -> None:
    r = client.responses.create(model="tiny", input="What is 2 plus 3?", tools=[mcp("vault")], temperature=0)
    assert r.status == "completed"
    assert calls(r) == [("vault", "add", "5", None)]
    grants = {(t["grant"], t["auth"], t["resource"]) for t in seen(oauth_server)["token_requests"]}
    assert ("client_credentials", "client_secret_basic", f"{oauth_server}/mcp") in grants


def test_a_response_calls_a_tool_behind_the_operators_login(
    client: openai.OpenAI, oauth_server: str, logs: Path
) -> None:
    r = client.responses.create(
        model="tiny", input="What is 2 plus 3?", tools=[mcp("vaultlogin")], temperature=0
    )
    assert r.status == "completed"
    assert calls(r) == [("vaultlogin", "add", "5", None)]
    state = seen(oauth_server)
    assert state["authorizations"] == 1  # the login's; the API server used what it stored
    assert [t["grant"] for t in state["token_requests"]].count("authorization_code") == 1
    login = (logs / "login.log").read_text()
    assert "Logged in to MCP server 'vaultlogin' (4 tools)" in login


def test_no_secret_or_token_reaches_a_log_a_trace_or_a_response(
    client: openai.OpenAI, oauth_server: str, vllm_server: str, vllm_log: Path, logs: Path
) -> None:
    r = client.responses.create(model="tiny", input="What is 2 plus 3?", tools=[mcp("vault")], temperature=0)
    state = seen(oauth_server)
    secrets = {CLIENT_SECRET, *state["bearer_seen"], *state["refresh_tokens"]}
    assert state["bearer_seen"]
    trace = httpx.get(f"{vllm_server}/v1/mcp/traces/{r.id}", timeout=10)
    assert trace.status_code == 200 and "vault" in trace.text
    shown = [vllm_log.read_text(), (logs / "login.log").read_text(), r.model_dump_json(), trace.text]
    leaks = [s for s in secrets for text in shown if s in text]
    assert not leaks
