"""gpt-oss through the plugin's HTTP door, in process: the real routes, store and a real stdio
MCP server, the real `HarmonyTurns` (rendering, continuation, `HarmonyParser`) over a scripted
engine that plays real harmony token ids, and the `openai` SDK as client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.asgi import BASE_URL, CALC, plugin_client
from tests.support.harmony import ScriptedHarmonyEngine, analysis, call, decode, final, output_ids
from vllm_mcp_ext.engine.harmony.render import encode_special
from vllm_mcp_ext.engine.harmony.turns import HarmonyTurns

MODEL = "gpt-oss-scripted"
TOOLS: list[Any] = [{"type": "mcp", "server_label": "calc", "require_approval": "never"}]
CALL = output_ids(analysis("Add them."), call("calc.add", '{"a": 2, "b": 3}'))
ANSWER = output_ids(analysis("It is 5."), final("2 + 3 = 5."))
RESULT = "<|start|>calc.add<|channel|>commentary to=assistant<|message|>5<|end|><|start|>assistant"


@pytest.fixture
def engine() -> ScriptedHarmonyEngine:
    return ScriptedHarmonyEngine([CALL, ANSWER], model_name=MODEL)


@pytest.fixture
async def client(engine: ScriptedHarmonyEngine, tmp_path: Path) -> AsyncIterator[openai.AsyncOpenAI]:
    http: httpx.AsyncClient
    async with plugin_client(HarmonyTurns(engine), (CALC,), tmp_path / "r.sqlite3") as http:  # type: ignore[arg-type]
        yield openai.AsyncOpenAI(base_url=f"{BASE_URL}/v1", api_key="-", http_client=http, max_retries=0)


async def test_harmony_turns_stream_reasoning_an_mcp_call_and_the_answer(
    client: openai.AsyncOpenAI, engine: ScriptedHarmonyEngine
) -> None:
    async with client.responses.stream(model=MODEL, input="2+3?", tools=TOOLS) as stream:
        kinds = [event.type async for event in stream]
        r = await stream.get_final_response()
    assert [i.type for i in r.output] == ["mcp_list_tools", "reasoning", "mcp_call", "reasoning", "message"]
    mcp = r.output[2]
    assert (mcp.server_label, mcp.name, mcp.arguments, mcp.output) == ("calc", "add", '{"a": 2, "b": 3}', "5")
    assert r.output_text == "2 + 3 = 5."
    assert "response.mcp_call_arguments.delta" in kinds and "response.reasoning_text.delta" in kinds
    # the tool turn continues the held ids token-exactly: prompt, output, then only the result
    first, second = engine.prompts
    assert second[: len(first) + len(CALL)] == first + CALL
    assert decode(second[len(first) + len(CALL) :]) == RESULT
    assert "namespace calc {" in decode(first) and "type add = " in decode(first)
    assert r.usage is not None and r.usage.input_tokens_details.cached_tokens == len(first) + len(CALL)


async def test_harmony_allowed_tools_limit_the_namespace(
    client: openai.AsyncOpenAI, engine: ScriptedHarmonyEngine
) -> None:
    tools = [{**TOOLS[0], "allowed_tools": ["add"]}]
    r = await client.responses.create(model=MODEL, input="2+3?", tools=tools)
    assert r.output_text == "2 + 3 = 5."
    developer = decode(engine.prompts[0]).split("<|start|>developer")[1].split("<|end|>")[0]
    assert "type add = " in developer and "multiply" not in developer


async def test_harmony_forced_tool_choice_writes_the_call_header(
    client: openai.AsyncOpenAI, engine: ScriptedHarmonyEngine
) -> None:
    header = "<|channel|>commentary to=calc.add <|constrain|>json<|message|>"
    engine.turns[0] = output_ids(call("calc.add", '{"a": 2, "b": 3}'), drop=len(encode_special(header)))
    choice: Any = {"type": "mcp", "server_label": "calc", "name": "add"}
    r = await client.responses.create(model=MODEL, input="2+3?", tools=TOOLS, tool_choice=choice)
    assert decode(engine.prompts[0]).endswith("<|start|>assistant" + header)
    assert [i.type for i in r.output][1:] == ["mcp_call", "reasoning", "message"] and r.output[
        1
    ].output == "5"


async def test_harmony_approval_then_previous_response_id_runs_the_call(
    client: openai.AsyncOpenAI, engine: ScriptedHarmonyEngine
) -> None:
    tools: Any = [{"type": "mcp", "server_label": "calc", "require_approval": "always"}]
    asked = await client.responses.create(model=MODEL, input="2+3?", tools=tools)
    request = asked.output[-1]
    assert request.type == "mcp_approval_request" and (request.name, request.arguments) == (
        "add",
        '{"a": 2, "b": 3}',
    )
    answer: Any = [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]
    done = await client.responses.create(
        model=MODEL, input=answer, tools=tools, previous_response_id=asked.id
    )
    assert [i.type for i in done.output] == ["mcp_call", "reasoning", "message"]
    assert done.output[0].output == "5" and done.output_text == "2 + 3 = 5."
    # a new response renders the stored conversation in full: the call as harmony writes it
    text = decode(engine.prompts[1])
    assert '<|channel|>commentary to=calc.add <|constrain|>json<|message|>{"a": 2, "b": 3}<|call|>' in text
    assert text.endswith(RESULT)


async def test_harmony_stateless_replay_renders_the_items_sent_back(
    client: openai.AsyncOpenAI, engine: ScriptedHarmonyEngine
) -> None:
    first = await client.responses.create(model=MODEL, input="2+3?", tools=TOOLS, store=False)
    engine.turns.append(output_ids(final("Still 5.")))
    items: Any = [{"role": "user", "content": "2+3?"}]
    items += [i.model_dump(exclude_none=True) for i in first.output]
    items += [{"role": "user", "content": "Sure?"}]
    again = await client.responses.create(model=MODEL, input=items, tools=TOOLS, store=False)
    assert again.output_text == "Still 5."
    text = decode(engine.prompts[2])
    assert 'to=calc.add <|constrain|>json<|message|>{"a": 2, "b": 3}<|call|>' in text
    assert "<|start|>calc.add<|channel|>commentary to=assistant<|message|>5<|end|>" in text
    assert text.endswith(
        "<|start|>assistant<|channel|>final<|message|>2 + 3 = 5.<|end|><|start|>user<|message|>Sure?<|end|><|start|>assistant"
    )
