"""The in-process Python API, end to end: a real vLLM engine in the test process, real MCP
servers (stdio, streamable HTTP, SSE), no HTTP server. Same loop, items and store as the door
at /v1/responses: the expectations are the ones test_mcp_loop.py has for the server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallCompletedEvent,
)

from tests.e2e.conftest import SERVERS
from tests.e2e.test_mcp_loop import CALC_TOOLS, mcp, shape
from vllm_mcp_ext import McpEngine
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.errors import InvalidRequest, NotFound

pytestmark = pytest.mark.e2e

ASK = "What is 2 plus 3?"
ONE_CALL = [
    ("mcp_list_tools", "calc", CALC_TOOLS, None),
    ("mcp_call", "calc", "add", '{"a": 2, "b": 3}', "5", "completed", None),
    ("message", "2 plus 3 is 5."),
]
# vLLM's CPU flags for the tiny model, by argument name, as `vllm serve` takes them.
ENGINE_ARGS: dict[str, Any] = {
    "served_model_name": ["tiny"],
    "dtype": "float32",
    "enforce_eager": True,
    "gpu_memory_utilization": 0.15,
    "block_size": 32,
    "max_model_len": 2048,
    "enable_auto_tool_choice": True,
    "tool_call_parser": "hermes",
}


@pytest.fixture(scope="module")
async def engine(
    tiny_model: Path, mcp_http_servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[McpEngine]:
    tool_server = {
        "mcpServers": {
            "calc": {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]},
            "notes": {"url": mcp_http_servers["notes"]},
            "facts": {"url": mcp_http_servers["facts"]},
        }
    }
    store = tmp_path_factory.mktemp("pyapi") / "responses.sqlite3"
    settings = Settings(store=str(store), connect_timeout=20, call_timeout=20)
    async with McpEngine(
        str(tiny_model), tool_server=tool_server, settings=settings, **ENGINE_ARGS
    ) as engine:
        yield engine


async def create(engine: McpEngine, input: Any, tools: list[dict[str, Any]], **kw: Any) -> Response:
    return await engine.responses.create(model="tiny", input=input, tools=tools, temperature=0, **kw)


async def test_create_runs_the_loop_with_a_stdio_server(engine: McpEngine) -> None:
    r = await create(engine, ASK, [mcp("calc")])
    assert isinstance(r, Response)
    assert r.status == "completed"
    assert shape(r) == ONE_CALL
    assert r.output_text == "2 plus 3 is 5."
    assert r.usage is not None and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


async def test_http_and_sse_servers_run_in_process_too(engine: McpEngine) -> None:
    r = await create(engine, "Save a note about Peru and tell me its capital.", [mcp("notes"), mcp("facts")])
    assert shape(r)[2:] == [
        ("mcp_call", "notes", "add_note", '{"text": "Peru"}', "saved: Peru", "completed", None),
        ("mcp_call", "facts", "capital", '{"country": "Peru"}', "Lima", "completed", None),
        ("message", "Saved. The capital of Peru is Lima."),
    ]


async def test_stream_yields_typed_events_ending_in_the_response(engine: McpEngine) -> None:
    async with engine.responses.stream(
        model="tiny", input="Multiply 6 by 7, then add 8.", tools=[mcp("calc")], temperature=0
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and isinstance(events[-1], ResponseCompletedEvent)
    assert shape(final)[1:] == [
        ("mcp_call", "calc", "multiply", '{"a": 6, "b": 7}', "42", "completed", None),
        ("mcp_call", "calc", "add", '{"a": 42, "b": 8}', "50", "completed", None),
        ("message", "The answer is 50."),
    ]
    deltas = [e for e in events if isinstance(e, ResponseMcpCallArgumentsDeltaEvent)]
    assert "".join(d.delta for d in deltas if d.output_index == 1) == '{"a": 6, "b": 7}'
    assert len([e for e in events if isinstance(e, ResponseMcpCallCompletedEvent)]) == 2
    # the same response as the non-streaming call
    assert shape(await create(engine, "Multiply 6 by 7, then add 8.", [mcp("calc")])) == shape(final)


async def test_create_with_stream_true_returns_the_events(engine: McpEngine) -> None:
    events = await engine.responses.create(model="tiny", input=ASK, tools=[mcp("calc")], stream=True)
    types = [event.type async for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.mcp_call.completed" in types


async def test_approval_then_previous_response_id_runs_the_stored_call(engine: McpEngine) -> None:
    gated = {"type": "mcp", "server_label": "calc"}  # OpenAI's default: every call waits
    first = await create(engine, ASK, [gated])
    request = first.output[-1]
    assert request.type == "mcp_approval_request" and request.name == "add"
    answer = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    second = await create(engine, [answer], [gated], previous_response_id=first.id)
    assert shape(second) == ONE_CALL[1:]
    assert second.output[0].approval_request_id == request.id
    stored = await engine.responses.retrieve(second.id)
    assert shape(stored) == shape(second)
    await engine.responses.delete(second.id)
    with pytest.raises(NotFound):
        await engine.responses.retrieve(second.id)


async def test_output_items_of_one_response_are_input_of_the_next(engine: McpEngine) -> None:
    first = await create(engine, ASK, [mcp("calc")], store=False)
    # SDK objects go back as they are, the way openai SDK users pass `response.output`
    second = await create(
        engine,
        [{"role": "user", "content": ASK}, *first.output, {"role": "user", "content": ASK}],
        [mcp("calc")],
    )
    assert [i.type for i in second.output if i.type == "mcp_list_tools"] == []
    assert second.output_text


async def test_a_bad_request_raises_the_error_the_server_would_answer(engine: McpEngine) -> None:
    with pytest.raises(InvalidRequest) as info:
        await create(engine, ASK, [mcp("nowhere")])
    assert (info.value.status, info.value.code, info.value.param) == (
        400,
        "unknown_server_label",
        "tools[0].server_label",
    )
    stream = engine.responses.stream(model="tiny", input=ASK, tools=[mcp("nowhere")])  # nothing runs yet
    with pytest.raises(InvalidRequest):
        async with stream:
            pass


async def test_a_first_turn_prompt_is_token_for_token_the_one_vllm_renders(
    engine: McpEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop renders a text-only first turn itself (template text, then the tokenizer) rather
    than through vLLM's full chat render: the engine must get the very same prompt ids."""
    from vllm_mcp_ext._compat import ChatCompletionRequest

    runtime = engine._runtime
    assert runtime is not None
    turns: Any = runtime.service.turns
    tool = {
        "type": "function",
        "function": {
            "name": "calc__add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            },
        },
    }
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "calc__add", "arguments": '{"a": 2, "b": 3}'},
    }
    conversations = [
        [{"role": "user", "content": ASK}],
        [{"role": "system", "content": "Be brief. é 😀"}, {"role": "user", "content": ASK}],
        [
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "5"},
            {"role": "assistant", "content": "2 plus 3 is 5."},
            {"role": "user", "content": "And times 4?"},
        ],
    ]
    for messages in conversations:
        for tools in ([tool], None):
            request = ChatCompletionRequest(
                model="tiny", messages=messages, tools=tools, tool_choice="auto" if tools else "none"
            )
            _, vllm_ids, vllm_text = await turns._chat.render(request)
            for inline_up_to in (32_768, 0):  # on the event loop, and on vLLM's render thread
                monkeypatch.setattr("vllm_mcp_ext.engine.chat_template.INLINE_RENDER_CHARS", inline_up_to)
                assert await turns._render_text_prompt(request) == (vllm_ids, vllm_text)
