"""server_url in a request body: what the parser accepts, rejects with a 400, and echoes."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest
from vllm_mcp_ext.responses.request import parse_request
from vllm_mcp_ext.servers import ToolServerRegistry
from vllm_mcp_ext.servers.remote import PolicyRejected, RemoteMcp, RemoteSource, Rule
from vllm_mcp_ext.servers.remote.service import request_headers


def body(*tools: dict[str, Any]) -> dict[str, Any]:
    return {"model": "tiny", "input": "hi", "tools": list(tools)}


def remote_tool(url: str = "https://mcp.example.com/private/path?k=1", **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "r", "server_url": url, "require_approval": "never", **extra}


def parse(*tools: dict[str, Any], **settings: Any):
    return parse_request(
        body(*tools), ToolServerRegistry((), Settings()), "tiny", remote=RemoteMcp(RemoteSettings(**settings))
    )


def test_server_url_resolves_to_a_remote_source_and_the_echo_is_the_url_sent_without_secrets() -> None:
    request = parse(remote_tool(headers={"X-Key": "hdr-secret"}, authorization="tok-secret"))
    assert isinstance(request.servers[0].source, RemoteSource)
    echo = request.tools[0]
    assert echo["server_url"] == "https://mcp.example.com/private/path?k=1"
    assert "headers" not in echo and "authorization" not in echo
    assert "secret" not in repr(request)


def test_the_echoed_server_url_leaves_out_secret_query_values() -> None:
    sent = "https://mcp.example.com/mcp?team=a&api_key=k-secret&access_token=t-secret#x"
    request = parse(remote_tool(sent))
    assert request.tools[0]["server_url"] == "https://mcp.example.com/mcp?team=a"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://mcp.example.com/mcp", Rule.HTTPS_REQUIRED),
        ("https://localhost/mcp", Rule.LOCALHOST),
        ("https://127.0.0.1/mcp", Rule.IP_LITERAL),
        ("https://[::1]/mcp", Rule.IP_LITERAL),
        ("https://169.254.169.254/", Rule.IP_LITERAL),
        ("https://u:p@mcp.example.com/", Rule.USERINFO),
    ],
)
def test_urls_rejected_without_dns_are_a_400_at_parse_time(url: str, rule: Rule) -> None:
    with pytest.raises(PolicyRejected) as info:
        parse(remote_tool(url))
    assert info.value.rule is rule and info.value.param == "tools[0].server_url" and info.value.status == 400


def test_remote_mode_off() -> None:
    with pytest.raises(PolicyRejected) as info:
        parse(remote_tool(), enabled=False)
    assert info.value.rule is Rule.REMOTE_DISABLED


def test_too_many_remote_servers() -> None:
    tools = [remote_tool(server_label=f"r{i}") for i in range(3)]
    with pytest.raises(InvalidRequest) as info:
        parse(*tools, max_servers_per_request=2)
    assert info.value.code == "too_many_remote_servers"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"headers": {"Host": "internal"}}, "tools[0].headers"),
        ({"headers": {"bad name": "x"}}, "tools[0].headers"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "tools[0].headers"),
        ({"transport": "carrier-pigeon"}, "tools[0].transport"),
        ({"connector_id": "connector_gmail"}, "tools[0].connector_id"),
    ],
)
def test_bad_fields_are_a_400(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(remote_tool(**extra))
    assert info.value.param == param


def test_authorization_becomes_a_bearer_header_that_wins() -> None:
    headers = request_headers({"AUTHORIZATION": "Basic x", "X-Key": "k"}, "tok", "tools[0]")
    assert headers == {"X-Key": "k", "Authorization": "Bearer tok"}
