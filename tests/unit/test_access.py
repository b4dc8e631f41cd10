"""API keys, the permission map of the tool-server file, and which URLs name ``/mcp`` itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vllm_mcp_ext.access import ANONYMOUS, ApiKeys, Caller, Permissions, hash_key
from vllm_mcp_ext.config import parse_tool_server_arg
from vllm_mcp_ext.errors import ConfigError, Forbidden
from vllm_mcp_ext.servers.gateway import names_gateway


def test_a_caller_is_the_hash_of_a_known_key_and_never_the_key() -> None:
    keys = ApiKeys.of(["k1", "k2"])
    assert keys.caller("Bearer k2") == Caller(hash_key("k2"))
    assert keys.caller("bearer k1") == Caller(hash_key("k1"))
    assert [keys.caller(h) for h in (None, "", "Bearer", "Bearer k3", "Basic k1")] == [None] * 5
    assert ApiKeys.of(None).caller(None) is ANONYMOUS and ApiKeys.of([]).caller("Bearer x") is ANONYMOUS


def test_only_the_owner_sees_an_owned_response_and_anonymous_sees_all() -> None:
    owner = hash_key("k1")
    assert Caller(owner).may_see(owner) and Caller(owner).may_see(None)
    assert not Caller(hash_key("k2")).may_see(owner)
    assert ANONYMOUS.may_see(owner)


def test_grants_by_plain_or_hashed_key_and_the_default() -> None:
    permissions = Permissions.load(
        {
            "k1": {"servers": ["calc"]},
            f"sha256:{hash_key('k2').upper()}": {"servers": {"calc": ["add"], "notes": "*"}},
            "*": {"servers": ["notes"]},
        }
    )
    one, two, other = (permissions.grant(Caller(hash_key(k))) for k in ("k1", "k2", "k3"))
    assert one.allows_tool("calc", "multiply") and not one.allows_server("notes")
    assert two.allows_tool("calc", "add") and not two.allows_tool("calc", "multiply")
    assert two.allows_tool("notes", "anything")
    assert other.allows_server("notes") and not other.allows_server("calc")
    assert permissions.grant(ANONYMOUS) == other
    with pytest.raises(Forbidden) as info:
        one.check_server("notes")
    assert info.value.status == 403 and "'notes'" in info.value.message


def test_without_a_section_everyone_may_use_everything_and_with_one_nobody_else() -> None:
    assert Permissions.load(None).grant(Caller("x")).allows_tool("any", "tool")
    assert not Permissions.load({"k1": {"servers": ["calc"]}}).grant(ANONYMOUS).allows_server("calc")


@pytest.mark.parametrize(
    "section",
    [[], {"k": []}, {"k": {"servers": "calc"}}, {"k": {"servers": {"calc": "add"}}}, {"k": {"tools": []}}],
)
def test_a_malformed_section_stops_start_up_without_printing_a_key(section: object) -> None:
    with pytest.raises(ConfigError) as info:
        Permissions.load(section)
    assert "'k'" not in info.value.message and "[k]" not in info.value.message


def test_the_tool_server_file_carries_the_section(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    section = {"k1": {"servers": ["calc"]}}
    path.write_text(json.dumps({"mcpServers": {"calc": {"command": "x"}}, "permissions": section}))
    assert parse_tool_server_arg(str(path)).permissions == section


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        ("/mcp", True),
        ("/mcp/", True),
        ("http://localhost:8000/mcp", True),
        ("http://127.0.0.1:8000/mcp", True),
        ("http://localhost/mcp", False),  # port 80
        ("http://localhost:9000/mcp", False),  # another server on this machine
        ("http://example.com:8000/mcp", False),
        ("http://localhost:8000/other/mcp", False),
        ("/mcp?x=1", False),
        ("tool-server://calc", False),
    ],
)
def test_which_server_urls_name_this_servers_own_mcp(url: str, ours: bool) -> None:
    assert names_gateway(url, 8000) is ours
