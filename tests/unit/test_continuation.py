"""Prefix-exact continuation: the next prompt is the held ids plus only what the template adds.

The plugin's own code builds every prompt (`ChatTemplateTurns` over `VllmChat`, over vLLM's real
renderer of the tiny model, no engine); the oracle is the template's full render of the next
turn, tokenized as the model was trained on it."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from vllm.config import ModelConfig, VllmConfig
from vllm.renderers.hf import HfRenderer
from vllm.renderers.online_renderer import OnlineRenderer
from vllm.tokenizers import get_tokenizer

from tests.support import scripts
from tests.support.scripts import Sample
from tests.support.tiny_model import TEMPLATE_PATH, build_tiny_model, encode_completion, encode_prompt
from vllm_mcp_ext._compat import ChatCompletionRequest, VllmChat
from vllm_mcp_ext.engine.chat_template import ChatTemplateTurns, _chat_request
from vllm_mcp_ext.engine.continuation import HistoryRewritten, suffix_after
from vllm_mcp_ext.types.parts import HeldTokens, TurnRequest


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return get_tokenizer(str(build_tiny_model()))


@pytest.fixture(scope="module")
def turns(tokenizer: Any) -> ChatTemplateTurns:
    """The plugin's chat-template turns over vLLM's renderer, as ``vllm serve
    --enable-auto-tool-choice --tool-call-parser hermes`` builds it for the tiny model."""
    config = VllmConfig(model_config=ModelConfig(model=str(build_tiny_model())))
    online = OnlineRenderer(
        config.model_config,
        HfRenderer(config, tokenizer),
        request_logger=None,
        chat_template=None,
        chat_template_content_format="auto",
        enable_auto_tools=True,
        tool_parser="hermes",
    )
    serving = SimpleNamespace(
        online_renderer=online,
        renderer=online.renderer,
        model_config=config.model_config,
        parser_cls=online.parser,
        models=SimpleNamespace(model_name=lambda lora=None: "tiny"),
        _effective_chat_template_kwargs=lambda request: {},
    )
    return ChatTemplateTurns(CountingChat(serving))  # type: ignore[arg-type]


class CountingChat(VllmChat):
    """vLLM's renderer, counting the conversations the template renders."""

    renders = 0
    sizes: list[int] = []  # messages per rendering

    async def render_text(self, request: Any, *, inline: bool = False) -> str | None:
        self.renders += 1
        self.sizes = [*self.sizes, len(request.messages)]
        return await super().render_text(request, inline=inline)


def turn_pairs(*, reasoning: bool) -> list[tuple[Sample, Sample]]:
    """(turn N, turn N+1) of every script, with or without <think> reasoning."""
    pairs = []
    for resolved in scripts.resolved_scripts().values():
        if bool(resolved.script.reasoning) != reasoning:
            continue
        pairs += list(pairwise(resolved.samples()))
    return pairs


def request(sample: Sample) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "tiny", "messages": sample.messages, "tools": sample.tools or None, "stream": True}
    )


async def first_prompt(turns: ChatTemplateTurns, sample: Sample) -> tuple[list[int], str]:
    rendered = await turns._render_text_prompt(request(sample))
    assert rendered is not None
    return rendered


async def continued(
    turns: ChatTemplateTurns, held: HeldTokens, following: Sample
) -> tuple[list[int], str] | HistoryRewritten:
    return await turns._continue(request(following), held)


async def test_next_prompt_is_the_held_ids_and_the_full_render_of_the_next_turn(turns, tokenizer) -> None:
    """Turn after turn, as the loop runs a script: each prompt extends the previous prompt and
    the model's output ids, and is token for token the template's full render of the
    conversation (so the model, trained on full renders, stays on script)."""
    pairs = turn_pairs(reasoning=False)
    assert len(pairs) >= 10
    prompt: tuple[list[int], str] | HistoryRewritten | None = None
    for turn, following in pairs:
        if turn.turn == 0:  # a script's first turn; later ones are the previous continuation
            prompt = await first_prompt(turns, turn)
        assert isinstance(prompt, tuple), (turn.script, turn.turn, prompt)
        ids, text = prompt
        assert ids == encode_prompt(tokenizer, turn), (turn.script, turn.turn)
        held = HeldTokens(text, ids, encode_completion(tokenizer, turn))
        prompt = await continued(turns, held, following)
        assert isinstance(prompt, tuple), (turn.script, turn.turn, prompt)
        assert prompt[0][: len(held.token_ids)] == held.token_ids, (turn.script, turn.turn)
        assert prompt[0] == encode_prompt(tokenizer, following), (turn.script, turn.turn)


async def test_a_continuation_rendering_a_window_gives_the_full_renders_ids(turns, tokenizer) -> None:
    """The tiny model's template over a run of six calls, each answered: once a window of the
    conversation rendered as the whole one did, continuations render windows (the message
    before the model's turn, the turn, its result, with the user's message), and each prompt
    is token for token the template's full render (the model's turn written as the template
    writes it), its text the full render's text."""
    chat = turns._chat
    assert isinstance(chat, CountingChat)
    _, sample = next(p for p in turn_pairs(reasoning=False) if p[0].script == "one_call")
    user, call, result = sample.messages
    messages = [user]
    prompt = await turns._prompt(request(replace(sample, messages=messages)), None)
    windowed = []
    for i in range(6):
        assert prompt.rendered is not None
        ids, text = prompt.rendered
        messages = [
            *messages,
            {**call, "tool_calls": [{**call["tool_calls"][0], "id": f"call_{i}"}]},
            {**result, "tool_call_id": f"call_{i}", "content": str(i)},
        ]
        following = replace(sample, messages=messages)
        full = await chat.render_text(request(following))
        assert full is not None and full.startswith(text)
        written = full[len(text) : full.index("<|im_end|>", len(text)) + len("<|im_end|>")]
        held = HeldTokens(text, ids, tokenizer.encode(written, add_special_tokens=False), prompt.source)
        chat.sizes = []
        prompt = await turns._prompt(request(following), held)
        assert prompt.continued and prompt.rendered is not None, i
        assert prompt.rendered == (encode_prompt(tokenizer, following), full), i
        windowed.append(max(chat.sizes) < len(messages))
    # two round trips before a window can leave a message out; the first one is checked
    assert windowed == [False, False, True, True, True, True]
    # the answer, then a new question: the whole conversation renders (a template may render
    # earlier turns otherwise once the last question moved)
    assert prompt.rendered is not None
    ids, text = prompt.rendered
    answer = {"role": "assistant", "content": "Done."}
    question = replace(sample, messages=[*messages, answer, {"role": "user", "content": "And 2 plus 2?"}])
    full = await chat.render_text(request(question))
    assert full is not None
    written = full[len(text) : full.index("<|im_end|>", len(text)) + len("<|im_end|>")]
    held = HeldTokens(text, ids, tokenizer.encode(written, add_special_tokens=False), prompt.source)
    chat.sizes = []
    prompt = await turns._prompt(request(question), held)
    assert prompt.continued and prompt.rendered == (encode_prompt(tokenizer, question), full)
    assert max(chat.sizes) == len(question.messages)


def turn_request(sample: Sample, held: HeldTokens | None = None) -> TurnRequest:
    return TurnRequest("resp_1-0", sample.messages, sample.tools or [], "auto", None, held=held)


async def test_a_first_turn_measured_before_the_response_renders_once(turns, tokenizer) -> None:
    """Measuring the first turn (the fit check, before the response starts) makes its prompt:
    the turn takes it, also after vLLM's render rewrote the calls' arguments in the measured
    request, and with held tokens it is their continuation (the new input tokenized alone)."""
    chat = turns._chat
    assert isinstance(chat, CountingChat)
    turn, following = next(p for p in turn_pairs(reasoning=False) if p[1].messages[-1]["role"] == "tool")
    assert any(m.get("tool_calls") for m in following.messages)  # arguments vLLM turns into objects
    ids, text = await first_prompt(turns, turn)
    for held in (None, HeldTokens(text, ids, encode_completion(tokenizer, turn))):
        before = chat.renders
        size = await turns.prompt_size(turn_request(following, held))
        assert size is not None and chat.renders == before + 1
        request = _chat_request("tiny", turn_request(following, held))
        prompt = await turns._turn_prompt(request, "resp_1-0", held)
        assert chat.renders == before + 1  # taken, not rendered again
        assert prompt.continued is (held is not None) and prompt.rendered is not None
        assert prompt.rendered[0] == encode_prompt(tokenizer, following)
        assert size.tokens == len(prompt.rendered[0])


async def test_the_model_keeps_its_own_spelling_of_a_call(turns, tokenizer) -> None:
    """A model that writes compact JSON: the template would re-render it spaced; the held ids stay."""
    turn, following = next(p for p in turn_pairs(reasoning=False) if p[0].script == "one_call")
    compact = '<tool_call>\n{"name":"add","arguments":{"a":2,"b":3}}\n</tool_call><|im_end|>'
    ids, text = await first_prompt(turns, turn)
    held = HeldTokens(text, ids, tokenizer.encode(compact, add_special_tokens=False))
    prompt = await continued(turns, held, following)
    assert not isinstance(prompt, HistoryRewritten), prompt
    assert prompt[0][: len(held.token_ids)] == held.token_ids
    assert tokenizer.decode(prompt[0][len(held.token_ids) :], skip_special_tokens=False).startswith(
        "\n<|im_start|>user\n<tool_response>\n5\n</tool_response>"
    )
    assert prompt[0] != encode_prompt(tokenizer, following)  # what a full re-render would give


async def test_a_template_that_drops_reasoning_falls_back(turns, tokenizer) -> None:
    (turn, following), *_ = turn_pairs(reasoning=True)
    ids, text = await first_prompt(turns, turn)
    prompt = await continued(turns, HeldTokens(text, ids, encode_completion(tokenizer, turn)), following)
    assert isinstance(prompt, HistoryRewritten) and "model's turn" in prompt.reason


def test_a_template_that_rewrites_earlier_turns_falls_back() -> None:
    before = (
        "<|im_start|>system\n1 message<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    after = before.replace("1 message", "3 messages") + "call<|im_end|>\n<|im_start|>tool\n5<|im_end|>\n"
    with pytest.raises(HistoryRewritten, match="earlier conversation"):
        suffix_after(before, "call<|im_end|>", after)


@pytest.mark.parametrize(
    ("generated", "suffix"),
    [
        ("call<|im_end|>", "\n<|im_start|>user\nok"),  # ended on its end-of-turn token
        ("call", "<|im_end|>\n<|im_start|>user\nok"),  # stopped by a stop string
        ("call \n<|im_end|>", "\n<|im_start|>user\nok"),  # whitespace the template strips
        ("call<|im_end|>\n", "<|im_start|>user\nok"),  # whitespace after the end token
    ],
)
def test_suffix_is_what_the_template_adds_after_the_generated_text(generated: str, suffix: str) -> None:
    prompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    rendered = prompt + "call<|im_end|>\n<|im_start|>user\nok"
    assert suffix_after(prompt, generated, rendered) == suffix


def test_template_path_is_the_tiny_models(tokenizer) -> None:
    assert tokenizer.chat_template == Path(TEMPLATE_PATH).read_text()


def test_only_a_small_continued_conversation_renders_on_the_event_loop() -> None:
    """A large tool output or a long conversation renders on vLLM's render thread: template
    work on the event loop stays bounded."""
    from vllm_mcp_ext.engine.chat_template import INLINE_RENDER_CHARS, _small
    from vllm_mcp_ext.types.parts import HeldTokens

    held = HeldTokens("<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n", [1, 2, 3], [4, 5, 6])
    turn = [
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "tool", "tool_call_id": "c1", "content": "5"},
    ]
    assert _small(turn, held)
    big_output = [*turn[:2], {"role": "tool", "tool_call_id": "c1", "content": "x" * INLINE_RENDER_CHARS}]
    assert not _small(big_output, held)
    long_history = HeldTokens("x" * INLINE_RENDER_CHARS, [1], [2])
    assert not _small(turn, long_history)
    parts = [*turn[:2], {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert not _small(parts, held)  # content parts (media, possibly) keep the usual path


def test_a_first_turn_counts_every_message_and_the_tools() -> None:
    from vllm_mcp_ext.engine.chat_template import INLINE_RENDER_CHARS, _small

    ask = [{"role": "user", "content": "What is 2 plus 3?"}]
    tool = {"type": "function", "function": {"name": "calc__add", "parameters": {"type": "object"}}}
    assert _small(ask, None, [tool])
    assert not _small(ask, None, [tool] * (INLINE_RENDER_CHARS // len(repr(tool)) + 1))
    big_call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "a", "arguments": "x" * INLINE_RENDER_CHARS},
    }
    replayed = [*ask, {"role": "assistant", "content": None, "tool_calls": [big_call]}, ask[0]]
    assert not _small(replayed, None, [tool])  # a first turn renders the replayed history too
