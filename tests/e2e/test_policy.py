"""Operator policy on a real ``vllm serve --api-key`` with the plugin: approvals from the tools'
annotations for a request that sets none, guardrail hooks that refuse a call and redact a result
on every door, the audit record of two keys, a response past its time bound, and a stdio server
that floods its output. The tiny model calls the calculator's tools as trained; the servers carry
the annotations (tests/e2e/servers/annotated_calculator.py) and the hooks live in
tests/e2e/servers/guardrails.py.

This module starts its own server (about a minute): its policy applies to every request.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import REPO, serve

pytestmark = pytest.mark.e2e

KEY_A, KEY_B = "key-a-policy", "key-b-policy"
SERVERS = REPO / "tests" / "e2e" / "servers"
TIME_BOUND = 15  # seconds; below the suite's 20 s call timeout, above any tiny-model response
HOOKS = ["tests.e2e.servers.guardrails:NoDivision", "tests.e2e.servers.guardrails:HideSums"]
BETA = ["mcp-client-2025-11-20"]


@pytest.fixture(scope="module")
def policy_server(tiny_model: Path, logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("policy")
    calc = str(SERVERS / "annotated_calculator.py")
    config = {
        "mcpServers": {
            "calc": {"command": sys.executable, "args": [calc, "--destructive", "multiply"]},
            "slowcalc": {
                "command": sys.executable,
                "args": [str(SERVERS / "slow_calculator.py"), str(root / "slow")],
            },
            "floodcalc": {
                "command": sys.executable,
                "args": [calc, "--flood-bytes", "2000000", "--stderr-lines", "20000"],
            },
        },
        "policy": {
            "approvals": {"readOnly": "never", "destructive": "always"},
            "guardrails": HOOKS,
            "maxResponseSeconds": TIME_BOUND,
        },
        "limits": {"maxStdioMessageBytes": 1_000_000, "maxStdioLogBytesPerSecond": 2_000},
    }
    path = root / "mcp.json"
    path.write_text(json.dumps(config))
    log = logs / "vllm-policy.log"
    with serve(tiny_model, path, log, store=root / "responses.sqlite3", api_keys=(KEY_A, KEY_B)) as url:
        yield url


def sdk(base_url: str, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=120)


def tools(label: str = "calc") -> Any:
    return [{"type": "mcp", "server_label": label}]  # no require_approval: the operator decides


def test_a_request_without_require_approval_asks_before_a_destructive_call_and_not_a_read(
    policy_server: str,
) -> None:
    client = sdk(policy_server)
    read = client.responses.create(model="tiny", input="What is 2 plus 3?", tools=tools(), temperature=0)
    assert [i.type for i in read.output][:2] == ["mcp_list_tools", "mcp_call"]
    assert read.output[1].name == "add" and read.output[1].status == "completed"
    write = client.responses.create(
        model="tiny", input="Multiply 6 by 7, then add 8.", tools=tools(), temperature=0
    )
    assert [i.type for i in write.output] == ["mcp_list_tools", "mcp_approval_request"]
    assert write.output[1].name == "multiply" and write.status == "completed"


def test_hooks_refuse_a_call_and_redact_a_result_on_the_responses_door(policy_server: str) -> None:
    client = sdk(policy_server)
    refused = client.responses.create(
        model="tiny",
        input="Divide 1 by 0.",
        tools=tools(),
        temperature=0,
        max_tool_calls=1,
        max_output_tokens=60,
    )
    call = next(i for i in refused.output if i.type == "mcp_call")
    assert call.name == "divide" and call.status == "failed"
    assert "division is not allowed on this server" in json.dumps(
        call.error.model_dump() if call.error else {}
    )
    redacted = client.responses.create(
        model="tiny",
        input="What is 2 plus 3?",
        tools=tools(),
        temperature=0,
        max_tool_calls=1,
        max_output_tokens=60,
    )
    call = next(i for i in redacted.output if i.type == "mcp_call")
    assert (call.name, call.output) == ("add", "[redacted]")


def test_hooks_refuse_and_redact_on_chat_completions(policy_server: str) -> None:
    client = sdk(policy_server)
    calls = []
    for text in ("Divide 1 by 0.", "What is 2 plus 3?"):
        c = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": text}],
            tools=tools(),
            temperature=0,
            max_completion_tokens=60,
        )
        calls.append(c.choices[0].message.model_extra["mcp_calls"][0])  # type: ignore[index]
    assert calls[0]["name"] == "divide" and "division is not allowed" in json.dumps(calls[0]["error"])
    assert (calls[1]["name"], calls[1]["output"]) == ("add", "[redacted]")


def test_hooks_refuse_and_redact_on_anthropic_messages(policy_server: str) -> None:
    claude = anthropic.Anthropic(base_url=policy_server, api_key=KEY_A, max_retries=0, timeout=120)
    results = []
    for text in ("Divide 1 by 0.", "What is 2 plus 3?"):
        m = claude.beta.messages.create(
            model="tiny",
            max_tokens=60,
            extra_body={"temperature": 0},
            messages=[{"role": "user", "content": text}],
            mcp_servers=[{"type": "url", "url": "tool-server://calc", "name": "calc"}],
            tools=[{"type": "mcp_toolset", "mcp_server_name": "calc"}],
            betas=BETA,
        )
        results.append(next(b for b in m.content if b.type == "mcp_tool_result"))
    assert results[0].is_error and "division is not allowed" in str(results[0].content)
    assert not results[1].is_error and "[redacted]" in str(results[1].content)


def test_the_audit_record_answers_each_key_its_own_calls(policy_server: str) -> None:
    sdk(policy_server, KEY_B).responses.create(
        model="tiny",
        input="What is 2 plus 3?",
        tools=tools(),
        temperature=0,
        max_tool_calls=1,
        max_output_tokens=60,
    )

    def audit(key: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{policy_server}/v1/mcp/audit", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    mine, theirs = audit(KEY_B), audit(KEY_A)
    assert mine and all(r["caller"] == mine[0]["caller"] for r in mine)
    assert mine[0]["tool"] == "add" and mine[0]["outcome"] == "ok" and mine[0]["server_label"] == "calc"
    assert {r["caller"] for r in theirs}.isdisjoint({mine[0]["caller"]})
    assert {"divide", "refused"} <= {v for r in theirs for v in (r["tool"], r["outcome"])}
    assert KEY_A not in json.dumps(theirs) and KEY_B not in json.dumps(mine)
    assert httpx.get(f"{policy_server}/v1/mcp/audit").status_code == 401


def test_a_response_past_its_time_bound_ends_incomplete_with_the_call_cancelled(policy_server: str) -> None:
    r = sdk(policy_server).responses.create(
        model="tiny", input="What is 2 plus 3?", tools=tools("slowcalc"), temperature=0
    )
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_response_time"
    call = next(i for i in r.output if i.type == "mcp_call")
    assert call.status == "failed" and f"{TIME_BOUND}s time limit" in json.dumps(call.error.model_dump())


def test_a_stdio_server_that_floods_is_cut_and_its_stderr_is_bounded(policy_server: str, logs: Path) -> None:
    r = sdk(policy_server).responses.create(
        model="tiny",
        input="What is 2 plus 3?",
        tools=tools("floodcalc"),
        temperature=0,
        max_tool_calls=1,
        max_output_tokens=60,
    )
    call = next(i for i in r.output if i.type == "mcp_call")
    assert call.status == "failed" and "exceeded the 1000000-byte limit" in json.dumps(
        call.error.model_dump()
    )
    noise = (logs / "vllm-policy.log").read_text().count("MCP server floodcalc: noise")
    assert 0 < noise < 20000 / 2  # 20,000 lines written at each start, at most ~2 kB/s logged
