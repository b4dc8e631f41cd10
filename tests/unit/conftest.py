"""The in-process fixtures the API tests share (tests/support/asgi.py): per module, one scripted
engine and one app of the plugin's real routes over the calculator MCP server (one calculator
process); per test, the engine reset to the default script and an ``openai`` client of the app.

A module that needs its own engine, store or servers defines ``engine`` or ``http`` itself; the
``client`` here then uses those."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, CALC, plugin_client
from tests.support.scripted import ScriptedTurns, play, tool_call
from vllm_mcp_ext.types.parts import TextDelta


@pytest.fixture(scope="module")
def scripted() -> ScriptedTurns:
    """The module's scripted engine, behind its `http` app."""
    return ScriptedTurns([])


@pytest.fixture
def engine(scripted: ScriptedTurns) -> ScriptedTurns:
    """The module's engine, reset: nothing seen; it calls calc's ``add`` and then answers "It is 5."."""
    scripted.seen.clear()
    play(scripted, tool_call("add", '{"a": 2, "b": 3}'), [TextDelta("It is "), TextDelta("5.")])
    return scripted


@pytest.fixture(scope="module")
async def http(scripted: ScriptedTurns) -> AsyncIterator[httpx.AsyncClient]:
    """The plugin's routes over `scripted`, the calculator configured, no store."""
    async with plugin_client(scripted, (CALC,)) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient, engine: ScriptedTurns) -> openai.AsyncOpenAI:
    """The real ``openai`` SDK on `http`, with `engine` ready for the test."""
    return openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)
