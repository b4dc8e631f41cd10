"""Remote sources against real MCP servers on loopback (well-behaved, rich and broken ones),
without vLLM: transports and fallback, pinning, pooling, redaction, limits, faults, cancellation."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import pytest
from mcp import types

from tests.e2e.servers import remote_mcp
from tests.support.processes import free_port
from vllm_mcp_ext import redact
from vllm_mcp_ext.config.remote import RemoteSettings
from vllm_mcp_ext.loop.calls import run_call
from vllm_mcp_ext.loop.toolset import ExposedTool
from vllm_mcp_ext.servers.remote import PolicyRejected, RemoteMcp, Rule
from vllm_mcp_ext.servers.remote.source import RemoteSource
from vllm_mcp_ext.types.source import CallFailed, ServerUnavailable

SECRET = "sk-test-PLANTED-0123456789"
HEADER_SECRET = "hdr-PLANTED-abcdef"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    with remote_mcp.running_in_thread(port) as url:
        yield url


@pytest.fixture(scope="module")
def settings(server: str) -> RemoteSettings:
    port = int(server.rsplit(":", 1)[1])
    return RemoteSettings(
        allow=(f"127.0.0.1:{port}",),
        hosts={"tools.test": "127.0.0.1"},
        connect_timeout=3,
        list_timeout=3,
        call_timeout=2,
        max_response_bytes=1_000_000,
        idle_timeout=30,
    )


@asynccontextmanager
async def remote(settings: RemoteSettings) -> AsyncIterator[RemoteMcp]:
    service = RemoteMcp(settings)
    try:
        yield service
    finally:
        await service.close()
    # nothing left behind: no session task, no secret held for log scrubbing
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp-remote") and not t.done()]
    assert redact._REGISTRY.active == ()


def source(
    service: RemoteMcp, url: str, *, headers=None, authorization=SECRET, transport=None
) -> RemoteSource:
    headers = {"X-Api-Key": HEADER_SECRET} if headers is None else headers
    return service.source("remote", url, headers, authorization, transport, "tools[0]")


def add_tool(tools: tuple[types.Tool, ...]) -> ExposedTool:
    return ExposedTool("add", "remote", next(t for t in tools if t.name == "add"))


async def call_add(src: RemoteSource, max_output: int | None = None):
    tools = await src.current_tools()
    return await run_call(src, add_tool(tools), {"a": 2, "b": 3}, max_output=max_output)


def methods(mode: str) -> list[str]:
    return [m[1] for m in remote_mcp.STATE["methods"] if m[0] == mode]


@pytest.mark.parametrize(
    ("path", "transport", "used"),
    [
        ("/calc/mcp", None, "streamable_http"),
        ("/sse/sse", None, "sse"),  # a URL ending in /sse means SSE
        ("/legacy/mcp", None, "sse"),  # POST answers 405: fall back to SSE
        ("/legacy/mcp", "sse", "sse"),  # the hint skips the probe
    ],
)
async def test_transports_and_sse_fallback(server: str, settings, path: str, transport, used: str) -> None:
    async with remote(settings) as service:
        src = source(service, server + path, transport=transport)
        outcome = await call_add(src)
        assert (outcome.output, outcome.error) == ("5", None)
        lease = src._opening.result()  # type: ignore[union-attr]
        assert lease.session.transport == used
        src.release()


async def test_authorization_wins_over_a_header_of_the_same_name(server: str, settings) -> None:
    async with remote(settings) as service:
        src = source(
            service, server + "/calc/mcp", headers={"authorization": "Basic other", "X-Api-Key": "k123"}
        )
        await src.current_tools()
        seen = remote_mcp.STATE["headers"][-1]
        assert seen["authorization"] == f"Bearer {SECRET}" and seen["x-api-key"] == "k123"
        src.release()


async def test_pinned_host_keeps_its_name_in_the_host_header(server: str, settings) -> None:
    port = server.rsplit(":", 1)[1]
    pinned = replace(settings, allow=(f"tools.test:{port}",))
    async with remote(pinned) as service:
        src = source(service, f"http://tools.test:{port}/calc/mcp")
        assert (await call_add(src)).output == "5"
        assert remote_mcp.STATE["headers"][-1]["host"] == f"tools.test:{port}"
        src.release()


async def test_redirect_to_metadata_is_a_400_naming_the_rule(server: str, settings) -> None:
    async with remote(settings) as service:
        src = source(service, server + "/redirect/mcp")
        with pytest.raises(PolicyRejected) as info:
            await src.current_tools()
        assert info.value.rule is Rule.REDIRECT and info.value.param == "tools[0].server_url"
        assert "169.254.169.254" in info.value.message
        src.release()


async def test_unreachable_server_is_unavailable_not_a_hang(settings) -> None:
    port = free_port()
    async with remote(replace(settings, allow=(f"127.0.0.1:{port}",))) as service:
        src = source(service, f"http://127.0.0.1:{port}/mcp")
        with pytest.raises(ServerUnavailable, match="is unavailable"):
            await asyncio.wait_for(src.current_tools(), 10)
        src.release()


@pytest.mark.parametrize("path", ["/hang/mcp", "/hang/sse"])
async def test_server_that_never_answers_is_unavailable_within_the_budget(
    server: str, settings, path
) -> None:
    async with remote(replace(settings, connect_timeout=0.5, list_timeout=0.5)) as service:
        src = source(service, server + path)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ServerUnavailable, match="no answer within"):
            await src.current_tools()
        assert asyncio.get_running_loop().time() - started < 3
        src.release()


@pytest.mark.parametrize(
    ("mode", "error_type", "code", "text"),
    [
        ("slow", "mcp_protocol_error", -32001, "timed out after 2s"),
        ("garbage", "mcp_protocol_error", -32700, "not valid JSON-RPC"),
        ("close", "mcp_protocol_error", -32000, "SSE stream ended"),
        ("http401", "http_error", 401, "HTTP 401"),
        ("http403", "http_error", 403, "HTTP 403"),
        ("http500", "http_error", 500, "HTTP 500"),
        ("giant", "mcp_protocol_error", -32603, "exceeded the 1000000-byte limit"),
    ],
)
async def test_faults_are_failed_calls_and_the_server_keeps_serving(
    server: str, settings, mode: str, error_type: str, code: int, text: str
) -> None:
    async with remote(settings) as service:
        src = source(service, f"{server}/{mode}/mcp")
        outcome = await asyncio.wait_for(call_add(src), 15)
        assert outcome.error is not None and outcome.error.type == error_type
        assert outcome.error.code == code and text in outcome.error.message  # type: ignore[union-attr]
        assert outcome.model_text.startswith("Error: ")
        src.release()
        healthy = source(service, f"{server}/calc/mcp")
        assert (await call_add(healthy)).output == "5"
        healthy.release()


async def test_timed_out_call_is_cancelled_on_the_server(server: str, settings) -> None:
    async with remote(settings) as service:
        src = source(service, f"{server}/slow/mcp")
        before = len(remote_mcp.STATE["cancelled"])
        await call_add(src)
        src.release()
        await _until(lambda: len(remote_mcp.STATE["cancelled"]) > before)
        assert "notifications/cancelled" in methods("slow")


@pytest.mark.parametrize("how", ["task", "anyio_scope"])
async def test_cancelling_the_caller_sends_notifications_cancelled(server: str, settings, how: str) -> None:
    """``anyio_scope`` is how Starlette cancels a streaming response when the client goes away:
    a cancel scope around the handler, the calls in tasks under ``asyncio.gather``."""
    async with remote(replace(settings, call_timeout=30)) as service:
        src = source(service, f"{server}/slow/mcp")
        tools = await src.current_tools()
        started = len(remote_mcp.STATE["started"])
        cancelled = len(remote_mcp.STATE["cancelled"])

        async def handler() -> None:
            await asyncio.gather(run_call(src, add_tool(tools), {"a": 2, "b": 3}))

        if how == "task":
            task = asyncio.create_task(handler())
            await _until(lambda: len(remote_mcp.STATE["started"]) > started)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(handler)
                await _until(lambda: len(remote_mcp.STATE["started"]) > started)
                tg.cancel_scope.cancel()
        await _until(lambda: len(remote_mcp.STATE["cancelled"]) > cancelled)
        cancel = [m for m in remote_mcp.STATE["methods"] if m[1] == "notifications/cancelled"][-1]
        assert cancel[2]["reason"] == "caller cancelled"
        src.release()


async def test_rich_results_are_described_for_the_model(server: str, settings) -> None:
    async with remote(settings) as service:
        expected = {
            "image": "[image: image/png, 100 bytes]\n[resource link: https://example.com/r.png (r.png)]",
            "resource": "[resource: file:///sum.bin, application/octet-stream, 100 bytes]\n"
            "[resource: file:///sum.txt, text/plain, 1 characters]\n5",
            "structured": '{"sum": 5}',
            "progress": "5",
        }
        for mode, text in expected.items():
            src = source(service, f"{server}/{mode}/mcp")
            outcome = await call_add(src)
            assert (outcome.output, outcome.model_text, outcome.error) == (text, text, None), mode
            src.release()
        assert remote_mcp.STATE["progress_sent"] is True


async def test_tool_error_is_an_execution_error_the_model_sees(server: str, settings) -> None:
    async with remote(settings) as service:
        src = source(service, f"{server}/error/mcp")
        outcome = await call_add(src)
        assert outcome.error is not None and outcome.error.type == "mcp_tool_execution_error"
        assert outcome.error.content == [{"type": "text", "text": "adder is broken"}]  # type: ignore[union-attr]
        assert outcome.model_text == "Error: adder is broken"
        src.release()


async def test_big_output_is_cut_with_a_marker_giving_the_full_size(server: str, settings) -> None:
    async with remote(settings) as service:
        src = source(service, f"{server}/big/mcp")
        outcome = await call_add(src, max_output=100)
        assert (
            outcome.output
            == "y" * 100 + "\n[truncated: the tool returned 5000 characters; the first 100 are kept]"
        )
        src.release()


async def test_secrets_never_come_back_in_results_errors_or_logs(
    server: str, settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with remote(settings) as service:
        src = source(service, f"{server}/leak/mcp")
        tools = await src.current_tools()
        ok = await run_call(src, add_tool(tools), {"a": 2, "b": 3})
        multiply = ExposedTool("multiply", "remote", next(t for t in tools if t.name == "multiply"))
        failed = await run_call(src, multiply, {"a": 2, "b": 3})
        logging.getLogger("mcp.client.test").warning("token was %s and %s", SECRET, HEADER_SECRET)
        src.release()
    # the server did get them ...
    assert remote_mcp.STATE["headers"][-1]["authorization"] == f"Bearer {SECRET}"
    # ... and echoed them back, which we scrub
    everything = json.dumps([ok.output, ok.model_text, failed.model_text, failed.error.model_dump()])  # type: ignore[union-attr]
    assert "[REDACTED]" in everything
    for secret in (SECRET, HEADER_SECRET):
        assert secret not in everything
        assert secret not in caplog.text
    assert "token was [REDACTED] and [REDACTED]" in caplog.text


async def test_sessions_are_pooled_per_credentials(server: str, settings) -> None:
    async with remote(settings) as service:
        url = f"{server}/calc/mcp"
        first = source(service, url)
        await first.current_tools()
        first.release()
        again = source(service, url)
        await again.current_tools()
        other = source(service, url, authorization="another-token-xyz")
        await other.current_tools()
        session = lambda s: s._opening.result().session  # noqa: E731
        assert session(again) is session(first)  # same credentials: reused
        assert session(other) is not session(first)  # never shared across credentials
        assert len(service.pool) == 2
        again.release()
        other.release()


async def test_idle_sessions_close(server: str, settings) -> None:
    async with remote(replace(settings, idle_timeout=0.2)) as service:
        src = source(service, f"{server}/calc/mcp")
        await src.current_tools()
        assert len(service.pool) == 1
        src.release()
        await _until(lambda: len(service.pool) == 0)


async def test_calls_per_server_are_capped(server: str, settings) -> None:
    async with remote(replace(settings, max_concurrent_calls=1, call_timeout=1)) as service:
        src = source(service, f"{server}/slow/mcp")
        tools = await src.current_tools()
        first, second = await asyncio.gather(
            run_call(src, add_tool(tools), {"a": 1, "b": 1}), run_call(src, add_tool(tools), {"a": 1, "b": 1})
        )
        messages = sorted(o.error.message for o in (first, second))  # type: ignore[union-attr]
        assert messages == [
            "too many calls in flight to this MCP server (limit 1)",
            "tool call timed out after 1s",
        ]
        src.release()


async def test_policy_rejection_at_call_time_is_a_failed_call(settings) -> None:
    async with remote(settings) as service:
        # e.g. after a previous response listed the tools, and DNS now answers loopback
        src = service.source("r", "https://tools.test/mcp", {}, None, None, "tools[0]")
        with pytest.raises(CallFailed, match=r"rule: loopback"):
            await src.call_tool("add", {})
        src.release()


async def _until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
