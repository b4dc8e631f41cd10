"""Continuing the held tokens, template by template: each way a chat template may render the
model's turn back (faithfully, with other JSON spacing, with keys reordered, without its
reasoning, with tool results as user turns, with a thinking tag pre-filled in the generation
prompt), a tool turn either continues the held ids token for token or is rendered in full, and
the trace says which and why.

Two turns of the plugin's `ChatTemplateTurns` over a scripted engine; the templates are rendered
by the tokenizer's own ``apply_chat_template`` (as vLLM renders them) after vLLM's preprocessing
of the conversation (tool-call arguments as objects).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from vllm.parser.parser_manager import ParserManager

from tests.support import stock_chat
from tests.support.formats import BY_NAME, tokenizer_for
from tests.unit.test_formats import WEATHER
from vllm_mcp_ext.engine import chat_template
from vllm_mcp_ext.engine.chat_template import ChatTemplateTurns
from vllm_mcp_ext.loop.toolset import ExposedTool
from vllm_mcp_ext.observe import trace
from vllm_mcp_ext.types.parts import TurnEnd, TurnRequest

FAMILY = BY_NAME["hermes"]
END = "<|im_end|>"

_HEAD = (
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' -%}<|im_start|>user\n{{ m.content }}<|im_end|>\n"
    "{%- elif m.role == 'assistant' -%}<|im_start|>assistant\n"
)
_CALLS = (
    "{%- for c in m.tool_calls or [] -%}"
    "<tool_call>\n{{ {'name': c.function.name, 'arguments': c.function.arguments} | tojson }}\n</tool_call>"
    "{%- endfor -%}<|im_end|>\n"
)
_TOOL = "{%- elif m.role == 'tool' -%}<|im_start|>tool\n{{ m.content }}<|im_end|>\n"
_TAIL = "{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
_REASONING = "{%- if m.reasoning -%}<think>{{ m.reasoning }}</think>{%- endif -%}"

TEMPLATES = {
    # writes the turn back as the model wrote it
    "faithful": _HEAD + _REASONING + _CALLS + _TOOL + _TAIL,
    # no tool role: results come back as a user turn
    "no tool role": _HEAD + _CALLS + "{%- elif m.role == 'tool' -%}<|im_start|>user\n<tool_response>\n"
    "{{ m.content }}\n</tool_response><|im_end|>\n" + _TAIL,
    # JSON without spaces where the model wrote them
    "respaced JSON": _HEAD
    + "{%- for c in m.tool_calls -%}<tool_call>\n{{ {'name': c.function.name, 'arguments': "
    "c.function.arguments} | tojson(indent=None) | replace(': ', ':') | replace(', ', ',') }}\n</tool_call>"
    "{%- endfor -%}<|im_end|>\n" + _TOOL + _TAIL,
    # arguments before the name
    "reordered JSON": _HEAD
    + '{%- for c in m.tool_calls -%}<tool_call>\n{"arguments": {{ c.function.arguments | tojson }}, '
    '"name": "{{ c.function.name }}"}\n</tool_call>{%- endfor -%}<|im_end|>\n' + _TOOL + _TAIL,
    # drops the reasoning of the model's earlier turns
    "drops reasoning": _HEAD + _CALLS + _TOOL + _TAIL,
    # pre-fills the thinking tag in the generation prompt, and renders it back with the reasoning
    "pre-filled thinking": _HEAD
    + "<think>\n{{ m.reasoning }}</think>\n\n"
    + _CALLS
    + _TOOL
    + _TAIL.replace("<|im_start|>assistant\n", "<|im_start|>assistant\n<think>\n"),
    # pre-fills the thinking tag, then renders earlier turns without it
    "pre-filled thinking, dropped": _HEAD
    + _CALLS
    + _TOOL
    + _TAIL.replace("<|im_start|>assistant\n", "<|im_start|>assistant\n<think>\n"),
}

CALL_TEXT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>'
# template -> (what the model writes in turn one, before its end token; reasoning parser)
OUTPUTS: dict[str, tuple[str, str | None]] = {
    "faithful": (CALL_TEXT, None),
    "no tool role": (CALL_TEXT, None),
    "respaced JSON": (CALL_TEXT, None),
    "reordered JSON": (CALL_TEXT, None),
    "drops reasoning": ("<think>Paris, 3 days.</think>" + CALL_TEXT, "qwen3"),
    "pre-filled thinking": ("Paris, 3 days.</think>\n\n" + CALL_TEXT, "qwen3"),
    "pre-filled thinking, dropped": ("Paris, 3 days.</think>\n\n" + CALL_TEXT, "qwen3"),
}
MODEL_TURN = "the chat template renders the model's turn otherwise than it was generated"
EARLIER = "the chat template renders the earlier conversation differently"
# template -> None when the second turn continues the held tokens, else the reason it does not
EXPECTED: dict[str, str | None] = {
    "faithful": None,
    "no tool role": None,
    "respaced JSON": None,  # whitespace aside, the model's turn is what it wrote
    "reordered JSON": MODEL_TURN,
    "drops reasoning": MODEL_TURN,
    "pre-filled thinking": None,
    "pre-filled thinking, dropped": EARLIER,
}


class TemplateChat(stock_chat.ScriptedChat):
    """`ScriptedChat` whose prompts are the conversation rendered with ``template``; the model
    writes ``outputs`` one turn after another, each ending with its end-of-turn token."""

    def __init__(self, chat: Any, template: str, outputs: list[str]):
        super().__init__(chat, FAMILY, "")
        self._template = template
        self._outputs = list(outputs)
        self.prompts: list[list[int]] = []

    async def render_text(self, request: Any, *, inline: bool = False) -> str | None:
        conversation = copy.deepcopy([dict(m) for m in request.messages])
        for message in conversation:
            for call in message.get("tool_calls") or []:
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        tools = [tool.model_dump() for tool in request.tools or []]
        return tokenizer_for(FAMILY).apply_chat_template(
            conversation,
            tools=tools,
            chat_template=self._template,
            tokenize=False,
            add_generation_prompt=True,
        )

    def render_settings(self, request: Any) -> str:
        return self._template + super().render_settings(request)

    def encode(self, text: str) -> list[int]:
        return list(tokenizer_for(FAMILY).encode(text, add_special_tokens=False))

    def generate(self, engine_input: Any, sampling: Any, *args: Any, **kwargs: Any) -> Any:
        self.prompts.append(list(engine_input["prompt_token_ids"]))
        tokenizer = tokenizer_for(FAMILY)
        deltas = stock_chat.token_deltas(FAMILY, self._outputs.pop(0))
        deltas.append(("", [tokenizer.convert_tokens_to_ids(END)]))  # the stop token: ids, no text
        return stock_chat._play(stock_chat._outputs(deltas))


def _turn(messages: list[dict[str, Any]], held: Any = None) -> TurnRequest:
    tools = [ExposedTool("get_weather", "weather", WEATHER).function_param()]
    return TurnRequest("resp-1", messages, tools, "auto", None, held=held)


@pytest.mark.parametrize("template", list(TEMPLATES))
async def test_a_tool_turn_continues_the_held_tokens_or_says_why_not(template: str) -> None:
    output, reasoning_parser = OUTPUTS[template]
    parser_cls = ParserManager.get_parser(
        tool_parser_name="hermes",
        reasoning_parser_name=reasoning_parser,
        enable_auto_tools=True,
        tokenizer=tokenizer_for(FAMILY),
    )
    chat = TemplateChat(stock_chat.serving_chat(FAMILY, parser_cls), TEMPLATES[template], [output, "Sunny."])
    turns = ChatTemplateTurns(chat)
    user = {"role": "user", "content": "Weather in Paris for 3 days?"}
    recorded = trace.begin("resp-1")

    first = [part async for part in turns.run_turn(_turn([user]))]
    end = first[-1]
    assert isinstance(end, TurnEnd) and end.held is not None
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'},
            }
        ],
    }
    if reasoning_parser:
        assistant["reasoning"] = "Paris, 3 days."
    result = {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}
    second = [part async for part in turns.run_turn(_turn([user, assistant, result], held=end.held))]
    assert isinstance(second[-1], TurnEnd)

    record = recorded.turns[1]
    assert record.rewritten == EXPECTED[template]
    assert record.continued is (EXPECTED[template] is None)
    rendered = await chat.render_text(
        stock_chat.stock_request(chat._chat, [WEATHER]).model_copy(
            update={"messages": [user, assistant, result]}
        )
    )
    assert rendered is not None
    prompt = chat.prompts[1]
    if record.continued:
        # token for token: the held ids, then only what the template adds after the model's turn
        assert prompt[: len(end.held.token_ids)] == end.held.token_ids
        assert record.held_tokens == len(end.held.token_ids)
        assert _words(tokenizer_for(FAMILY).decode(prompt)) == _words(rendered)
    else:
        assert prompt == chat.encode(rendered)
        assert record.held_tokens == 0


def _words(text: str) -> str:
    """Text whitespace aside (a continued prompt keeps the model's own spacing)."""
    return "".join(text.split())


# the faithful template, but numbering tool results by their place in the whole conversation:
# a window of the conversation renders other numbers, so it must never be used
NUMBERED = TEMPLATES["faithful"].replace(
    "<|im_start|>tool\n{{ m.content }}", "<|im_start|>tool\n#{{ loop.index }} {{ m.content }}"
)
WINDOW_TEMPLATES = {**TEMPLATES, "numbers tool results": NUMBERED}
WINDOW_OUTPUTS = {**OUTPUTS, "numbers tool results": OUTPUTS["faithful"]}


class RecordingChat(TemplateChat):
    """`TemplateChat` that records how many messages each rendering had."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.rendered: list[int] = []

    async def render_text(self, request: Any, *, inline: bool = False) -> str | None:
        self.rendered.append(len(request.messages))
        return await super().render_text(request, inline=inline)


async def _four_turns(template: str, monkeypatch: pytest.MonkeyPatch, windows: bool) -> RecordingChat:
    """Three calls, each result sent back, then the answer: four turns continuing held tokens."""
    output, reasoning_parser = WINDOW_OUTPUTS[template]
    parser_cls = ParserManager.get_parser(
        tool_parser_name="hermes",
        reasoning_parser_name=reasoning_parser,
        enable_auto_tools=True,
        tokenizer=tokenizer_for(FAMILY),
    )
    chat = RecordingChat(
        stock_chat.serving_chat(FAMILY, parser_cls), WINDOW_TEMPLATES[template], [output] * 3 + ["Sunny."]
    )
    turns = ChatTemplateTurns(chat)
    if not windows:
        monkeypatch.setattr(chat_template, "_window", lambda *args: None)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris for 3 days?"},
    ]
    held = None
    for i in range(4):
        parts = [part async for part in turns.run_turn(_turn(list(messages), held=held))]
        end = parts[-1]
        assert isinstance(end, TurnEnd)
        held = end.held
        call = {"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'}
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": f"call_{i}", "type": "function", "function": call}],
        }
        if reasoning_parser:
            assistant["reasoning"] = "Paris, 3 days."
        messages += [assistant, {"role": "tool", "tool_call_id": f"call_{i}", "content": f"Sunny {i}"}]
    monkeypatch.undo()
    return chat


@pytest.mark.parametrize("template", list(WINDOW_TEMPLATES))
async def test_a_continuation_rendering_a_window_gives_the_very_prompt_of_the_whole_render(
    template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token for token, every turn's prompt is the one the whole conversation's render gives:
    a window renders in its place only once the template rendered one exactly as the whole
    conversation (the third turn checks it; the fourth uses it), and never for a template
    that renders a window otherwise."""
    whole = await _four_turns(template, monkeypatch, windows=False)
    windowed = await _four_turns(template, monkeypatch, windows=True)
    assert len(whole.prompts) == 4 and windowed.prompts == whole.prompts
    assert whole.rendered[-1] == 8  # the fourth turn renders all 8 messages
    if EXPECTED.get(template) is None and template != "numbers tool results":
        # system, user, the last result (with the generation prompt); then the turn and its result
        assert windowed.rendered[-2:] == [3, 5]
    else:
        assert windowed.rendered[-1] == 8
