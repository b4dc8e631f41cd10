"""Structured answers beside tools, vLLM's extension fields and ``truncation``: what the request
keeps for every turn, the 400s naming the field, and the structural tag a turn is held to."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xgrammar as xgr
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.parser import ParserManager
from vllm.tokenizers import get_tokenizer

from vllm_mcp_ext._compat import VllmChat
from vllm_mcp_ext.config import StdioServerSpec
from vllm_mcp_ext.config.settings import Settings
from vllm_mcp_ext.engine.truncation import drop_oldest
from vllm_mcp_ext.errors import InvalidRequest, Unsupported
from vllm_mcp_ext.events import ResponseStream
from vllm_mcp_ext.responses.request import parse_request
from vllm_mcp_ext.servers import ToolServerRegistry

MODEL = Path(__file__).resolve().parents[1] / "support" / "tiny_model" / "model"
MCP = {"type": "mcp", "server_label": "calc", "require_approval": "never"}
SUM = {
    "type": "object",
    "properties": {"sum": {"type": "integer"}},
    "required": ["sum"],
    "additionalProperties": False,
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    },
}


@pytest.fixture(scope="module")
def registry() -> ToolServerRegistry:
    return ToolServerRegistry((StdioServerSpec("calc", "python", ("calc.py",)),), Settings())


def parse(registry: ToolServerRegistry, **body: Any):
    return parse_request({"model": "tiny", "input": "hi", **body}, registry, "tiny")


# -- text.format beside tools ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "name": "sum", "schema": SUM, "strict": True},
            {"type": "json_schema", "json_schema": {"name": "sum", "schema": SUM, "strict": True}},
        ),
    ],
)
def test_text_format_beside_mcp_tools_is_kept_for_the_turns(registry, fmt, expected) -> None:
    request = parse(registry, tools=[MCP], text={"format": fmt})
    assert request.response_format == expected
    assert ResponseStream(request).snapshot("completed").text.format.type == fmt["type"]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return get_tokenizer(str(MODEL))


def hermes_chat(tokenizer: Any) -> VllmChat:
    """`VllmChat` over the parts of vLLM's serving chat that building a turn's constraint uses:
    the hermes tool parser as `vllm serve --tool-call-parser hermes` makes it."""
    parser_cls = ParserManager.get_parser(
        tool_parser_name="hermes",
        reasoning_parser_name=None,
        enable_auto_tools=True,
        model_name="tiny",
        is_harmony=False,
        tokenizer=tokenizer,
    )
    serving = SimpleNamespace(
        parser_cls=parser_cls,
        renderer=SimpleNamespace(tokenizer=tokenizer),
        _make_parser=lambda request, tok, kwargs: parser_cls(tok, request.tools, chat_template_kwargs=kwargs),
    )
    return VllmChat(serving)  # type: ignore[arg-type]


def matches(grammar: Any, tokenizer: Any, text: str) -> bool:
    matcher = xgr.GrammarMatcher(grammar)
    ids = tokenizer.encode(text, add_special_tokens=False)
    return all(matcher.accept_token(i) for i in ids) and matcher.accept_token(tokenizer.eos_token_id)


def test_a_turn_is_either_a_hermes_tool_call_or_the_constrained_answer(tokenizer) -> None:
    request = ChatCompletionRequest(
        model="tiny",
        messages=[{"role": "user", "content": "What is 2 plus 3?"}],
        tools=[ADD],
        tool_choice="auto",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "sum", "schema": SUM, "strict": True},
        },
    )
    adjusted = hermes_chat(tokenizer).structured_answer(request, {})
    assert adjusted.response_format is None
    tag = adjusted.structured_outputs.structural_tag
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    grammar = xgr.GrammarCompiler(info).compile_structural_tag(tag)
    assert matches(
        grammar, tokenizer, '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
    )
    assert matches(grammar, tokenizer, '{"sum": 5}')
    assert not matches(grammar, tokenizer, "2 plus 3 is 5.")
    assert not matches(grammar, tokenizer, '{"total": 5}')
    assert not matches(grammar, tokenizer, '<tool_call>\n{"name": "subtract", "arguments": {}}\n</tool_call>')


def test_json_object_answers_are_held_to_json_too(tokenizer) -> None:
    request = ChatCompletionRequest(
        model="tiny",
        messages=[{"role": "user", "content": "hi"}],
        tools=[ADD],
        tool_choice="auto",
        response_format={"type": "json_object"},
    )
    tag = hermes_chat(tokenizer).structured_answer(request, {}).structured_outputs.structural_tag
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    grammar = xgr.GrammarCompiler(info).compile_structural_tag(tag)
    assert matches(grammar, tokenizer, '{"anything": [1, 2]}')
    assert matches(grammar, tokenizer, '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>')
    assert not matches(grammar, tokenizer, "plain words")


def test_without_tools_or_with_tool_choice_none_the_answer_format_stays_as_it_is(tokenizer) -> None:
    chat = hermes_chat(tokenizer)
    for extra in ({}, {"tools": [ADD], "tool_choice": "none"}):
        request = ChatCompletionRequest(
            model="tiny",
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
            **extra,
        )
        assert chat.structured_answer(request, {}) is request


# -- vLLM's extensions ------------------------------------------------------------------------


def test_vllm_extension_fields_reach_every_turn(registry) -> None:
    body = {
        "top_k": 5,
        "min_p": 0.1,
        "repetition_penalty": 1.1,
        "seed": 7,
        "stop": ["END"],
        "priority": 3,
        "cache_salt": "salt",
        "chat_template_kwargs": {"enable_thinking": False},
        "mm_processor_kwargs": {"num_crops": 2},
        "include_reasoning": True,  # not an engine option
    }
    request = parse(registry, tools=[MCP], **body)
    expected = {k: v for k, v in body.items() if k != "include_reasoning"}
    assert request.engine_options == expected
    turn = ChatCompletionRequest(
        model="tiny", messages=[{"role": "user", "content": "hi"}], **request.engine_options
    )
    params = turn.to_sampling_params(16, {})
    assert (params.top_k, params.min_p, params.seed, params.stop) == (5, 0.1, 7, ["END"])
    assert (turn.priority, turn.cache_salt) == (3, "salt")


@pytest.mark.parametrize(
    ("field", "value"),
    [("top_k", "many"), ("min_p", 2), ("cache_salt", ""), ("stop", ["a", "b", "c", "d", "e"])],
)
def test_a_bad_extension_value_is_a_400_naming_the_field(registry, field, value) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(registry, tools=[MCP], **{field: value})
    assert info.value.param == field


@pytest.mark.parametrize(
    ("field", "value"),
    [("include_reasoning", False), ("structured_outputs", {"json": {}}), ("kv_transfer_params", {"a": 1})],
)
def test_an_extension_the_loop_does_not_honour_is_a_400(registry, field, value) -> None:
    with pytest.raises(Unsupported) as info:
        parse(registry, tools=[MCP], **{field: value})
    assert info.value.param == field
    parse(registry, tools=[MCP], include_reasoning=True, watermarking=False)  # neutral values pass


# -- truncation -----------------------------------------------------------------------------------


def test_truncation_is_echoed_and_checked(registry) -> None:
    assert (
        ResponseStream(parse(registry, tools=[MCP], truncation="auto")).snapshot("completed").truncation
        == "auto"
    )
    assert parse(registry, tools=[MCP]).truncation == "disabled"
    with pytest.raises(InvalidRequest) as info:
        parse(registry, tools=[MCP], truncation="sometimes")
    assert info.value.param == "truncation"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_truncation_drops_whole_exchanges_then_tool_rounds_and_keeps_the_system_message() -> None:
    system = {"role": "system", "content": "be brief"}
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]}
    result = {"role": "tool", "tool_call_id": "c1", "content": "5"}
    answer = {"role": "assistant", "content": "5"}
    history = [system, user("one"), call, result, answer, user("two"), call, result, call, result]
    once = drop_oldest(history)
    assert once == [system, user("two"), call, result, call, result]
    twice = drop_oldest(once)
    assert twice == [system, user("two"), call, result]
    assert drop_oldest(twice) is None  # the latest user message and its last round stay
    assert drop_oldest([user("only")]) is None


def test_a_prompt_longer_than_the_context_window_leaves_no_tokens_to_generate() -> None:
    """The turn then fails with ``context_length_exceeded`` (the client's error), not with
    vLLM's bare ValueError (a server error)."""
    serving = SimpleNamespace(
        model_config=SimpleNamespace(max_model_len=2048), default_sampling_params={}, override_max_tokens=None
    )
    chat = VllmChat(serving)  # type: ignore[arg-type]
    request = ChatCompletionRequest(model="tiny", messages=[{"role": "user", "content": "hi"}])
    assert chat.max_tokens(request, 8752) == 0
    assert chat.max_tokens(request, 2048) == 0
    assert chat.max_tokens(request, 2000) == 48
