"""What a server asks of our session while a call runs (`servers.client_handlers`): elicitation by
policy, sampling through the call's handlers, progress per call, logs to our log. The server is
tests/e2e/servers/asking.py, in memory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client._transport import TransportStreams
from mcp.shared.memory import create_client_server_memory_streams

from tests.e2e.servers import asking
from vllm_mcp_ext.config.client_features import DEFAULT, ClientFeatures, SamplingPolicy
from vllm_mcp_ext.servers.client_handlers import InFlight, policy_answer, schema_defaults
from vllm_mcp_ext.servers.session import McpSession, Timeouts
from vllm_mcp_ext.servers.transports import Transport
from vllm_mcp_ext.types.client_handlers import ClientHandlers
from vllm_mcp_ext.types.source import CallFailed

# the asking server samples and logs as 2025-11-25 does (deprecated in 2026-07-28)
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
TIMEOUTS = Timeouts(open=20, initialize=20, list=10, call=30)
ORDER_SCHEMA = asking.Order.model_json_schema()


def in_memory() -> Transport:
    @asynccontextmanager
    async def open_streams() -> AsyncIterator[TransportStreams]:
        server = asking.build()._lowlevel_server
        async with (
            create_client_server_memory_streams() as (client, (read, write)),
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(server.run, read, write, server.create_initialization_options())
            try:
                yield client
            finally:
                tg.cancel_scope.cancel()

    return Transport("stdio", open_streams)


@asynccontextmanager
async def opened(features: ClientFeatures = DEFAULT) -> AsyncIterator[McpSession]:
    session = McpSession("asking", [in_memory()], TIMEOUTS, features=features)
    session.start("mcp-test:asking")
    try:
        await session.wait_open()
        yield session
    finally:
        await session.close()


def text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


# -- the policy's answers ---------------------------------------------------------------------


def test_schema_defaults_fill_every_field_that_has_one() -> None:
    assert schema_defaults(ORDER_SCHEMA) == {"quantity": 2, "gift_wrap": False, "size": "medium"}


def test_a_required_field_without_a_default_cannot_be_filled() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"default": 1}},
        "required": ["a"],
    }
    assert schema_defaults(schema) is None
    form = types.ElicitRequestFormParams(message="?", requested_schema=schema)
    assert policy_answer(ClientFeatures(elicitation="accept_defaults"), form).action == "decline"


def test_url_mode_is_declined_even_with_accept_defaults() -> None:
    url = types.ElicitRequestURLParams(message="go", url="https://x.test", elicitation_id="1")
    assert policy_answer(ClientFeatures(elicitation="accept_defaults"), url).action == "decline"


# -- over a session -------------------------------------------------------------------------


async def test_elicitation_is_not_declared_by_default_and_a_server_that_asks_anyway_is_refused() -> None:
    async with opened() as session:
        with pytest.raises(CallFailed) as info:
            await session.call_tool("confirm_order", {})
    assert info.value.message == "Elicitation not supported"


async def test_accept_defaults_answers_the_form_with_its_defaults() -> None:
    async with opened(ClientFeatures(elicitation="accept_defaults")) as session:
        result = await session.call_tool("confirm_order", {})
        assert text(result) == 'elicitation accept {"quantity":2,"gift_wrap":false,"size":"medium"}'
        assert text(await session.call_tool("sign_in", {})) == "elicitation decline"


async def test_sampling_goes_to_the_calls_handlers_within_the_servers_cap() -> None:
    asked: list[tuple[str, str, int, int]] = []

    async def sample(
        server: str, params: types.CreateMessageRequestParams, budget: int
    ) -> types.CreateMessageResult:
        first = params.messages[0].content
        assert isinstance(first, types.TextContent)
        asked.append((server, first.text, params.max_tokens, budget))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="hi"),
            model="m",
            stop_reason="endTurn",
        )

    features = ClientFeatures(sampling=SamplingPolicy(max_tokens=10, max_tokens_per_response=99))
    async with opened(features) as session:
        result = await session.call_tool("greet", {}, handlers=ClientHandlers(sample=sample))
    assert text(result) == "sampled by m (endTurn): 'hi'"
    # the server asked for 64 tokens: lowered to its cap of 10; the response's budget goes along
    assert asked == [("asking", asking.SAMPLING_PROMPT, 10, 99)]


async def test_sampling_is_refused_when_off_or_when_no_call_lends_a_sampler() -> None:
    async with opened() as session:
        off = text(await session.call_tool("greet", {}))
    async with opened(ClientFeatures(sampling=SamplingPolicy())) as session:
        unlent = text(await session.call_tool("greet", {}))
    assert off.startswith("sampling refused")
    assert unlent.startswith("sampling refused") and "no response's model" in unlent


async def test_progress_reaches_the_call_and_logs_reach_our_log(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    caplog.set_level(logging.INFO, logger="vllm_mcp_ext.servers.client_handlers")
    async with opened() as session:
        result = await session.call_tool("count", {}, handlers=ClientHandlers(progress=progress))
    assert text(result) == "counted to 3"
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    logged = [r.getMessage() for r in caplog.records if r.name == "vllm_mcp_ext.servers.client_handlers"]
    assert logged == [f"MCP server asking/counter: counted {n}" for n in (1, 2, 3)]


# -- both protocol generations ----------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "version"), [("2025-11-25", "2025-11-25"), ("auto", "2026-07-28")])
async def test_both_generations_answer_elicitation_and_sampling(protocol: Any, version: str) -> None:
    """On 2026-07-28 the server's asks come back as ``input_required`` results, answered by the
    same policy and handlers, and the call retried with the answers."""

    async def sample(
        server: str, params: types.CreateMessageRequestParams, budget: int
    ) -> types.CreateMessageResult:
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="hi"),
            model="m",
            stop_reason="endTurn",
        )

    features = ClientFeatures(elicitation="accept_defaults", sampling=SamplingPolicy(), protocol=protocol)
    async with opened(features) as session:
        assert session._session is not None and session._session.protocol_version == version
        order = await session.call_tool("order_form", {})
        greeting = await session.call_tool("greeting", {}, handlers=ClientHandlers(sample=sample))
    assert text(order) == 'elicitation accept {"quantity":2,"gift_wrap":false,"size":"medium"}'
    assert text(greeting) == "sampled by m (endTurn): 'hi'"


async def test_a_2026_server_sees_no_elicitation_capability_by_default() -> None:
    async with opened(ClientFeatures(protocol="auto")) as session:
        with pytest.raises(CallFailed) as info:
            await session.call_tool("order_form", {})
    assert "did not declare the form elicitation capability" in info.value.message


# -- routing a server's request to the calls in flight ------------------------------------------


class Owner:
    async def sample(self, server: str, params: Any, budget: int) -> Any:
        return None


def test_requests_go_to_the_one_owner_of_the_calls_in_flight_and_to_none_when_several() -> None:
    first, second = Owner(), Owner()
    calls = InFlight()
    assert calls.sampler() is None
    with calls.track(ClientHandlers(sample=first.sample)), calls.track(ClientHandlers(sample=first.sample)):
        assert calls.sampler() == first.sample  # two calls of one response
        with calls.track(ClientHandlers(sample=second.sample)):
            assert calls.sampler() is None  # and one of another: whose is it?
        assert calls.sampler() == first.sample
    assert len(calls) == 0
