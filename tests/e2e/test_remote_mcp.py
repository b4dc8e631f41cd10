"""Remote MCP servers named by server_url, end to end: real vLLM + plugin, real MCP servers on
loopback (reached through the suite's allowlist), the real openai SDK."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e

CALC_TOOLS = ("add", "multiply", "divide", "crash")
SECRET = "sk-e2e-PLANTED-7f3a9c1d"
HEADER_SECRET = "hdr-e2e-PLANTED-41b2"


def remote(url: str, label: str = "rcalc", **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "server_url": url, "require_approval": "never", **extra}


def create(client: openai.OpenAI, text: str, tools: list[dict[str, Any]], **kw: Any):
    return client.responses.create(model="tiny", input=text, tools=tools, temperature=0, **kw)


def calls(response) -> list:
    return [item for item in response.output if item.type == "mcp_call"]


def state(remote_mcp_server: str) -> dict[str, Any]:
    return httpx.get(f"{remote_mcp_server}/state").json()


@pytest.mark.parametrize("path", ["/calc/mcp", "/sse/sse", "/legacy/mcp"])
def test_remote_server_answers_like_a_configured_one(client, remote_mcp_server: str, path: str) -> None:
    """Streamable HTTP, SSE by URL, and SSE by fallback (the POST answers 405)."""
    r = create(client, "What is 2 plus 3?", [remote(remote_mcp_server + path)])
    listing, call, message = r.output
    assert (listing.type, listing.server_label, tuple(t.name for t in listing.tools)) == (
        "mcp_list_tools",
        "rcalc",
        CALC_TOOLS,
    )
    assert (call.server_label, call.name, call.arguments, call.output, call.status) == (
        "rcalc",
        "add",
        '{"a": 2, "b": 3}',
        "5",
        "completed",
    )
    assert message.content[0].text == "2 plus 3 is 5."
    assert r.tools[0].server_url == remote_mcp_server + path  # as sent (it holds no secrets)


def test_pinned_host_name_is_kept_in_the_host_header(client, remote_mcp_server: str) -> None:
    port = remote_mcp_server.rsplit(":", 1)[1]
    # tools.test answers 127.0.0.1 (operator's static hosts) and is allowlisted by name
    r = create(client, "What is 2 plus 3?", [remote(f"http://tools.test:{port}/calc/mcp")])
    assert calls(r)[0].output == "5" and r.output_text == "2 plus 3 is 5."
    assert any(h["host"] == f"tools.test:{port}" for h in state(remote_mcp_server)["headers"])


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://mcp.example.com/mcp", "https_required"),
        ("https://localhost/mcp", "localhost"),
        ("https://127.0.0.1:1/mcp", "ip_literal"),
        ("https://[::1]/mcp", "ip_literal"),
        ("https://10.0.0.1/mcp", "ip_literal"),
        ("https://172.16.0.1/mcp", "ip_literal"),
        ("https://192.168.0.1/mcp", "ip_literal"),
        ("https://169.254.169.254/latest/meta-data", "ip_literal"),
        ("https://[fd00::1]/mcp", "ip_literal"),
        ("https://rebind.test/mcp", "loopback"),  # a name that answers 127.0.0.1
        ("{remote}/redirect/mcp", "redirect"),  # allowed server, redirects to 169.254.169.254
    ],
)
def test_rejected_urls_are_a_400_naming_the_rule(client, remote_mcp_server: str, url: str, rule: str) -> None:
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError) as info:
        create(client, "What is 2 plus 3?", [remote(url.format(remote=remote_mcp_server))])
    assert time.monotonic() - started < 10  # never a hang
    err = info.value.body
    assert (err["type"], err["param"], err["code"]) == (
        "invalid_request_error",
        "tools[0].server_url",
        "server_url_not_allowed",
    )
    assert f"(rule: {rule})" in err["message"]


@pytest.mark.parametrize(
    ("mode", "error_type", "code"),
    [
        ("slow", "mcp_protocol_error", -32001),
        ("garbage", "mcp_protocol_error", -32700),
        ("close", "mcp_protocol_error", -32000),
        ("http401", "http_error", 401),
        ("http403", "http_error", 403),
        ("http500", "http_error", 500),
        ("giant", "mcp_protocol_error", -32603),
    ],
)
def test_broken_remote_servers_fail_the_call_not_the_server(
    client, remote_mcp_server: str, mode: str, error_type: str, code: int
) -> None:
    started = time.monotonic()
    r = create(client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/{mode}/mcp")], max_output_tokens=80)
    assert time.monotonic() - started < 30
    call = calls(r)[0]
    assert (call.name, call.status, call.error.type, call.error.code) == ("add", "failed", error_type, code)
    assert r.status in ("completed", "incomplete")
    # and the server goes on serving
    again = create(client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/calc/mcp")])
    assert calls(again)[0].output == "5"


@pytest.mark.parametrize(
    ("mode", "output"),
    [
        ("image", "[image: image/png, 100 bytes]\n[resource link: https://example.com/r.png (r.png)]"),
        (
            "resource",
            "[resource: file:///sum.bin, application/octet-stream, 100 bytes]\n"
            "[resource: file:///sum.txt, text/plain, 1 characters]\n5",
        ),
        ("structured", '{"sum": 5}'),
        ("progress", "5"),
    ],
)
def test_rich_results_reach_the_item_as_text(client, remote_mcp_server: str, mode: str, output: str) -> None:
    r = create(client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/{mode}/mcp")], max_output_tokens=80)
    call = calls(r)[0]
    assert (call.status, call.output, call.error) == ("completed", output, None)


def test_tool_error_result_is_a_failed_call_with_its_content(client, remote_mcp_server: str) -> None:
    r = create(client, "What is 2 plus 3?", [remote(f"{remote_mcp_server}/error/mcp")], max_output_tokens=80)
    call = calls(r)[0]
    assert (call.status, call.error.type) == ("failed", "mcp_tool_execution_error")
    assert call.error.content == [{"type": "text", "text": "adder is broken"}]


def test_secrets_appear_in_no_response_and_no_log(
    client, vllm_server: str, remote_mcp_server: str, vllm_log: Path
) -> None:
    tool = remote(
        f"{remote_mcp_server}/leak/mcp",
        headers={"X-Api-Key": HEADER_SECRET, "Authorization": "Basic loses"},
        authorization=SECRET,
    )
    bodies = []
    for text in ("What is 2 plus 3?", "Multiply 6 by 7, then add 8."):  # result echo, then error echo
        for stream in (False, True):
            payload = {"model": "tiny", "input": text, "tools": [tool], "temperature": 0, "stream": stream}
            payload["max_output_tokens"] = 80
            r = httpx.post(f"{vllm_server}/v1/responses", json=payload, timeout=120)
            assert r.status_code == 200
            bodies.append(r.text)
    # a rejected request with the same secrets, and a dead one
    bad = {**tool, "server_url": "https://rebind.test/mcp"}
    r = httpx.post(
        f"{vllm_server}/v1/responses", json={"model": "tiny", "input": "hi", "tools": [bad]}, timeout=60
    )
    assert r.status_code == 400
    bodies.append(r.text)
    seen = state(remote_mcp_server)["headers"]
    assert any(h.get("authorization") == f"Bearer {SECRET}" for h in seen)  # it was planted
    assert any(h.get("x-api-key") == HEADER_SECRET for h in seen)
    joined = "\n".join(bodies)
    assert "[REDACTED]" in joined  # the server echoed them; we scrubbed
    log = vllm_log.read_text(errors="replace")
    for secret in (SECRET, HEADER_SECRET):
        assert secret not in joined
        assert secret not in log


def test_client_disconnect_mid_call_cancels_it_on_the_mcp_server(
    vllm_server: str, remote_mcp_server: str
) -> None:
    before = state(remote_mcp_server)
    payload = {
        "model": "tiny",
        "input": "What is 2 plus 3?",
        "tools": [remote(f"{remote_mcp_server}/slow/mcp")],
        "temperature": 0,
        "stream": True,
    }
    with (
        httpx.Client(timeout=60) as http,
        http.stream("POST", f"{vllm_server}/v1/responses", json=payload) as response,
    ):
        for line in response.iter_lines():
            if "response.mcp_call_arguments.done" in line:
                break
        deadline = time.monotonic() + 10
        while len(state(remote_mcp_server)["started"]) == len(before["started"]):
            assert time.monotonic() < deadline, "the slow call never started"
            time.sleep(0.05)
    # the connection is closed here, well before the 4 s call timeout
    deadline = time.monotonic() + 10
    while True:
        now = state(remote_mcp_server)
        if len(now["cancelled"]) > len(before["cancelled"]):
            break
        assert time.monotonic() < deadline, "the MCP server never saw the call cancelled"
        time.sleep(0.05)
    assert now["cancelled"][-1] - now["started"][-1] < 3
    cancels = [m for m in now["methods"][len(before["methods"]) :] if m[1] == "notifications/cancelled"]
    assert cancels and cancels[-1][0] == "slow" and cancels[-1][2]["reason"] == "caller cancelled"


def test_client_giving_up_on_a_plain_response_cancels_the_call_too(
    vllm_server: str, remote_mcp_server: str
) -> None:
    before = state(remote_mcp_server)
    payload = {
        "model": "tiny",
        "input": "What is 2 plus 3?",
        "tools": [remote(f"{remote_mcp_server}/slow/mcp")],
        "temperature": 0,
    }
    with pytest.raises(httpx.ReadTimeout):  # the client stops waiting and closes the connection
        httpx.post(f"{vllm_server}/v1/responses", json=payload, timeout=httpx.Timeout(60, read=2))
    deadline = time.monotonic() + 10
    while True:
        now = state(remote_mcp_server)
        if len(now["cancelled"]) > len(before["cancelled"]):
            break
        assert time.monotonic() < deadline, "the MCP server never saw the call cancelled"
        time.sleep(0.05)
    assert len(now["started"]) > len(before["started"])
    assert now["cancelled"][-1] - now["started"][-1] < 3  # before the 4 s call timeout
    cancels = [m for m in now["methods"][len(before["methods"]) :] if m[1] == "notifications/cancelled"]
    assert cancels and cancels[-1][2]["reason"] == "caller cancelled"


def test_remote_tools_echo_keeps_no_credentials(client, remote_mcp_server: str) -> None:
    r = create(
        client,
        "What is 2 plus 3?",
        [
            remote(
                f"{remote_mcp_server}/calc/mcp?token=abc",
                headers={"X-Api-Key": "k-1234"},
                authorization="t-5678",
            )
        ],
    )
    echoed = json.dumps(r.model_dump()["tools"])
    assert "k-1234" not in echoed and "t-5678" not in echoed and "token=abc" not in echoed
