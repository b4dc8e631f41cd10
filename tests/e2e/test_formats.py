"""Tool-call formats other than hermes, end to end on vLLM's CPU backend: one real engine in the
test process, vLLM's serving state built over it once per ``--tool-call-parser``, a real stdio
MCP server.

The model writes each family's call syntax because a logits processor fixes its tokens
(``tests/support/scripted_formats.py``): the tiny model's tokenizer holds ``<tool_call>`` and
``</tool_call>``, which is what qwen3_coder, glm47 and pythonic need. The same call goes through
the plugin (``/v1/responses`` with an MCP tool: the call runs, the model answers) and through stock
vLLM's ``OpenAIServingChat.create_chat_completion`` with the same tool as a function tool,
streamed and not; the calls must be equal. The template renders the model's call back as hermes
JSON, not as the family wrote it, so the loop re-renders the second turn in full and says why
in the trace.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

from tests.e2e.conftest import REPO, SERVERS
from tests.e2e.test_python_api import ENGINE_ARGS
from tests.support.scripted_formats import ANSWER, CALL, marker
from vllm_mcp_ext import McpEngine, _compat
from vllm_mcp_ext.observe import trace

pytestmark = pytest.mark.e2e

FAMILIES = ("qwen3_coder", "glm47", "pythonic")
PROCESSOR = "tests.support.scripted_formats:FormatOutputs"
TOOL_SERVER = {"mcpServers": {"calc": {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]}}}
ASK = "Add 2 and 3."


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
async def engine(tiny_model: Path, monkeypatch_module: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """One engine for every family, its outputs scripted by the logits processor."""
    # the engine's process loads the processor from this checkout
    monkeypatch_module.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch_module.setenv("VLLM_MCP_TRACE", "1")
    args = _compat.serve_args(str(tiny_model), {**ENGINE_ARGS, "logits_processors": [PROCESSOR]})
    async with _compat.start_engine(args) as llm:
        yield llm


@pytest.fixture(scope="module", params=FAMILIES)
async def served(
    request: pytest.FixtureRequest, engine: Any, tiny_model: Path
) -> AsyncIterator[tuple[str, Any, Any]]:
    """For one family: the plugin and stock vLLM's serving chat, both with its tool parser."""
    family = request.param
    options = {**ENGINE_ARGS, "tool_call_parser": family}
    state = await _compat.serving_state(engine, _compat.serve_args(str(tiny_model), options))
    async with McpEngine(engine=engine, tool_server=TOOL_SERVER, **options) as plugin:
        yield family, plugin, state.openai_serving_chat


async def _stock_calls(
    chat: Any, family: str, function: dict[str, Any], stream: bool
) -> list[tuple[str, Any]]:
    """Stock chat completions' calls for the same prompt, with ``function`` as the tool."""
    request = ChatCompletionRequest.model_validate(
        {
            "model": "tiny",
            "messages": [{"role": "user", "content": f"{ASK} {marker(family)}"}],
            "tools": [function],
            "temperature": 0,
            "stream": stream,
        }
    )
    result = await chat.create_chat_completion(request)
    if not stream:
        calls = result.choices[0].message.tool_calls or []
        return [(c.function.name, json.loads(c.function.arguments)) for c in calls]
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    async for line in result:
        data = line.removeprefix("data: ").strip()
        if data == "[DONE]":
            break
        for choice in json.loads(data).get("choices", []):
            for call in choice["delta"].get("tool_calls") or []:
                function_delta = call.get("function") or {}
                names[call["index"]] = names.get(call["index"], "") + (function_delta.get("name") or "")
                arguments[call["index"]] = arguments.get(call["index"], "") + (
                    function_delta.get("arguments") or ""
                )
    return [(names[i], json.loads(arguments[i])) for i in sorted(names)]


async def test_each_format_runs_the_loop_and_parses_as_stock_chat_completions(
    served: tuple[str, Any, Any],
) -> None:
    family, plugin, chat = served
    mcp = {"type": "mcp", "server_label": "calc", "require_approval": "never", "allowed_tools": ["add"]}
    response = await plugin.responses.create(
        model="tiny", input=f"{ASK} {marker(family)}", tools=[mcp], temperature=0
    )

    assert response.status == "completed"
    listed, call, message = response.output
    assert call.type == "mcp_call" and (call.name, json.loads(call.arguments)) == CALL
    assert call.output == "5" and call.error is None
    assert message.type == "message" and message.content[0].text == ANSWER

    schema = listed.tools[0].input_schema
    function = {
        "type": "function",
        "function": {"name": "add", "description": "Add two integers.", "parameters": schema},
    }
    assert await _stock_calls(chat, family, function, stream=False) == [CALL]
    assert await _stock_calls(chat, family, function, stream=True) == [CALL]

    # The template writes the call back as hermes JSON, not in the family's syntax: the second
    # turn is rendered in full, and the trace says why.
    turns = trace.finished(response.id).turns
    assert [t.continued for t in turns] == [False, False]
    assert turns[1].rewritten == "the chat template renders the model's turn otherwise than it was generated"


async def test_each_format_streams_the_same_response(served: tuple[str, Any, Any]) -> None:
    family, plugin, _ = served
    mcp = {"type": "mcp", "server_label": "calc", "require_approval": "never", "allowed_tools": ["add"]}
    body = {"model": "tiny", "input": f"{ASK} {marker(family)}", "tools": [mcp], "temperature": 0}
    async with plugin.responses.stream(**body) as stream:
        deltas = [e.delta async for e in stream if e.type == "response.mcp_call_arguments.delta"]
        final = await stream.get_final_response()
    assert json.loads("".join(deltas)) == CALL[1]
    assert [item.type for item in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.output[1].output == "5"
