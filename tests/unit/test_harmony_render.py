"""Rendering for gpt-oss with the real openai-harmony encoding: MCP servers as tool namespaces,
and token-exact continuation across tool turns (checked against a full re-render)."""

from __future__ import annotations

from typing import Any

from tests.support.harmony import ScriptedHarmonyEngine, analysis, call, decode, final, output_ids
from vllm_mcp_ext.engine.harmony.render import (
    ToolNames,
    conversation,
    encode_special,
    prefill,
    prompt_ids,
)
from vllm_mcp_ext.engine.harmony.turns import HarmonyTurns
from vllm_mcp_ext.types.parts import TurnEnd, TurnRequest


def fn(name: str, description: str = "", **properties: Any) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": sorted(properties)}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


TOOLS = [
    fn("search", "Search the docs.", q={"type": "string"}),
    fn("python__run", "Run code.", code={"type": "string"}),
    fn("lookup", "A client function."),
]
SERVERS = {"search": ("my-docs", "search"), "python__run": ("python", "run")}


def turn(messages: list[dict[str, Any]], **kw: Any) -> TurnRequest:
    return TurnRequest("r-0", messages, kw.pop("tools", TOOLS), kw.pop("tool_choice", "auto"), None, **kw)


def test_harmony_mcp_servers_are_namespaces_in_the_developer_message() -> None:
    names = ToolNames.build(TOOLS, SERVERS)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    text = decode(prompt_ids(conversation(turn(messages, tool_servers=SERVERS), names)))
    developer = text.split("<|start|>developer<|message|>")[1].split("<|end|>")[0]
    assert developer.startswith("# Instructions\n\nBe brief.")
    assert "namespace my_docs {" in developer and "type search = (_: {\nq: string,\n}) => any;" in developer
    # "python" is vLLM's demo tool namespace: the MCP server named so gets another one
    assert "namespace python_2 {" in developer and "type run = " in developer
    assert "namespace functions {" in developer and "type lookup = " in developer
    assert text.endswith("<|start|>user<|message|>hi<|end|><|start|>assistant")
    assert names.recipient("search") == "my_docs.search" and names.exposed("python_2.run") == "python__run"
    assert names.exposed("functions.lookup") == "lookup"


def test_harmony_tool_choice_none_renders_no_tools_and_required_prefills_the_channel() -> None:
    names = ToolNames.build([], {})
    text = decode(prompt_ids(conversation(turn([{"role": "user", "content": "hi"}]), names)))
    assert "# Tools" not in text and "<|start|>developer" not in text
    one_server = ToolNames.build(TOOLS[:1], SERVERS)
    assert prefill("required", one_server) == "<|channel|>commentary to=my_docs."
    assert prefill("required", ToolNames.build(TOOLS, SERVERS)) == "<|channel|>commentary to="
    assert prefill("auto", one_server) == ""


async def run(turns: HarmonyTurns, request: TurnRequest) -> TurnEnd:
    end = None
    async for part in turns.run_turn(request):
        end = part
    assert isinstance(end, TurnEnd)
    return end


async def test_harmony_tool_turn_prompt_is_the_held_ids_plus_the_result_and_equals_a_rerender() -> None:
    args = '{"q": "café"}'
    first = output_ids(analysis("Look it up."), call("my_docs.search", args))
    engine = ScriptedHarmonyEngine([first, output_ids(final("Found."))])
    turns = HarmonyTurns(engine)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "find"},
    ]
    end = await run(turns, turn(list(messages), tool_servers=SERVERS))
    # what the loop appends: the model's turn and the tool result
    messages += [
        {
            "role": "assistant",
            "content": "",
            "reasoning": "Look it up.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search", "arguments": args}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "2 pages"},
    ]
    second = turn(list(messages), tool_servers=SERVERS, held=end.held)
    await run(turns, second)
    prompt, continued = engine.prompts
    assert continued[: len(prompt) + len(first)] == prompt + first
    tail = decode(continued[len(prompt) + len(first) :])
    assert (
        tail
        == "<|start|>my_docs.search<|channel|>commentary to=assistant<|message|>2 pages<|end|><|start|>assistant"
    )
    full = prompt_ids(conversation(second, ToolNames.build(TOOLS, SERVERS)))
    assert continued == full


async def test_harmony_continuation_falls_back_to_a_full_render_when_history_changed() -> None:
    first = output_ids(call("my_docs.search", "{}"))[:-1]  # cut short: no <|call|>
    engine = ScriptedHarmonyEngine([first, output_ids(final("ok"))])
    turns = HarmonyTurns(engine)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "find"}]
    end = await run(turns, turn(list(messages), tool_servers=SERVERS))
    messages += [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "none"},
    ]
    second = turn(list(messages), tool_servers=SERVERS, held=end.held)
    await run(turns, second)
    assert engine.prompts[1] == prompt_ids(conversation(second, ToolNames.build(TOOLS, SERVERS)))


async def test_harmony_forced_tool_choice_writes_the_call_header_for_the_model() -> None:
    header = "<|channel|>commentary to=my_docs.search <|constrain|>json<|message|>"
    forced = encode_special(header)
    engine = ScriptedHarmonyEngine([output_ids(call("my_docs.search", "{}"), drop=len(forced))])
    choice = {"type": "function", "function": {"name": "search"}}
    parts = [
        p
        async for p in HarmonyTurns(engine).run_turn(
            turn([{"role": "user", "content": "x"}], tool_choice=choice, tool_servers=SERVERS)
        )
    ]
    assert decode(engine.prompts[0]).endswith("<|start|>assistant" + header)
    assert next(getattr(p, "name", None) for p in parts if type(p).__name__ == "ToolCallDelta") == "search"
