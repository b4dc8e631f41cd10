"""`HostPolicy` (DNS rebinding), `View` cursors and names, and the bounded `EventLog`."""

from __future__ import annotations

import pytest
from mcp import types
from mcp.server.streamable_http import EventMessage
from mcp.shared.exceptions import MCPError

from vllm_mcp_ext.access.origin import HostPolicy
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import ConfigError
from vllm_mcp_ext.proxy.events import EventLog
from vllm_mcp_ext.proxy.view import Page, View

REFUSED_HOST = "the Host header does not name this server"
REFUSED_ORIGIN = "the Origin header names another site"


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "[::1]", "LOCALHOST:80"]
)
def test_loopback_names_are_allowed_at_any_port(host: str) -> None:
    policy = HostPolicy.load(None)
    assert policy.refusal(host, None) is None
    assert policy.refusal(host, "http://localhost:3000") is None


def test_a_foreign_host_or_origin_is_refused() -> None:
    policy = HostPolicy.load("0.0.0.0")
    assert policy.refusal("evil.example.com", None) == REFUSED_HOST
    assert policy.refusal("evil.example.com:8000", "http://evil.example.com") == REFUSED_HOST
    assert policy.refusal(None, None) == REFUSED_HOST
    assert policy.refusal("localhost:8000", "http://evil.example.com") == REFUSED_ORIGIN
    assert policy.refusal("localhost:8000", "null") == REFUSED_ORIGIN
    assert policy.refusal("0.0.0.0:8000", None) == REFUSED_HOST  # a wildcard bind names no host


def test_the_bind_host_and_the_operators_list_are_allowed() -> None:
    policy = HostPolicy.load("gpu-box.lan", "mcp.example.com, 10.0.0.5,[fd00::1]")
    for host in ("gpu-box.lan:8000", "mcp.example.com", "10.0.0.5:8000", "[fd00::1]:8000"):
        assert policy.refusal(host, None) is None, host
    assert policy.refusal("localhost", "https://mcp.example.com") is None
    assert policy.refusal("other.example.com", None) == REFUSED_HOST


def test_a_star_turns_the_check_off() -> None:
    assert HostPolicy.load(None, "*").refusal("evil.example", "http://evil") is None


def test_the_aggregate_names_carry_the_label_and_resolve_back() -> None:
    view = View(("a", "a_", "calc"), aggregate=True)
    assert view.shown("calc", "add") == "calc__add"
    assert view.candidates("calc__add") == [("calc", "add")]
    assert view.candidates("a___b") == [("a", "_b"), ("a_", "b")]  # resolved by listing, in order
    assert view.candidates("calc__") == []
    assert view.candidates("add") == []
    one = View(("calc",), aggregate=False)
    assert one.shown("calc", "add") == "add"
    assert one.candidates("add") == [("calc", "add")]


def test_an_aggregate_cursor_says_which_server_and_its_own_cursor() -> None:
    view = View(("a", "b"), aggregate=True)
    first = view.page(None)
    assert first == Page("a", None)
    cursor = view.cursor(Page("a", "page-2"))
    assert cursor is not None and view.page(cursor) == Page("a", "page-2")
    assert view.following("a") == Page("b", None)
    assert view.following("b") is None
    with pytest.raises(MCPError) as info:
        view.page("not-a-cursor")
    assert info.value.code == types.INVALID_PARAMS
    with pytest.raises(MCPError):
        view.page(View(("zzz",), aggregate=True).cursor(Page("zzz", None)))  # another view's server
    one = View(("a",), aggregate=False)
    assert one.page("their-own") == Page("a", "their-own")
    assert one.cursor(Page("a", "next")) == "next"


def _message(n: int) -> types.JSONRPCMessage:
    return types.JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"n": n})


async def _replay(log: EventLog, session: str, after: str) -> tuple[str | None, list[EventMessage]]:
    sent: list[EventMessage] = []

    async def send(event: EventMessage) -> None:
        sent.append(event)

    stream = await log.session(session).replay_events_after(after, send)
    return stream, sent


async def test_a_session_replays_its_own_stream_after_the_last_event_it_saw() -> None:
    log = EventLog(max_events=100)
    mine, other = log.session("s1"), log.session("s2")
    primed = await mine.store_event("1", None)
    ids = [await mine.store_event("1", _message(n)) for n in range(3)]
    await mine.store_event("2", _message(99))  # another stream of the same session
    await other.store_event("1", _message(-1))  # the same stream id in another session
    stream, sent = await _replay(log, "s1", primed)
    assert stream == "1"
    assert [e.event_id for e in sent] == ids
    assert [e.message for e in sent] == [_message(n) for n in range(3)]
    assert await _replay(log, "s2", ids[0]) == (None, [])  # not its event: nothing, no stream


async def test_the_log_keeps_at_most_its_bound_and_forgets_an_ended_session() -> None:
    log = EventLog(max_events=3)
    store = log.session("s1")
    ids = [await store.store_event("1", _message(n)) for n in range(5)]
    assert len(log) == 3
    assert await _replay(log, "s1", ids[0]) == (None, [])  # dropped: nothing to resume from
    stream, sent = await _replay(log, "s1", ids[2])
    assert stream == "1" and [e.event_id for e in sent] == ids[3:]
    log.drop("s1")
    assert len(log) == 0


def test_the_allowlist_and_the_event_bound_are_settings_read_once() -> None:
    settings = Settings.from_env({"VLLM_MCP_ALLOWED_HOSTS": "mcp.example.com", "VLLM_MCP_SSE_EVENTS": "50"})
    assert (settings.allowed_hosts, settings.sse_events) == ("mcp.example.com", 50)
    assert (Settings().allowed_hosts, Settings().sse_events) == (None, 1000)
    with pytest.raises(ConfigError, match="VLLM_MCP_SSE_EVENTS"):
        Settings.from_env({"VLLM_MCP_SSE_EVENTS": "many"})
