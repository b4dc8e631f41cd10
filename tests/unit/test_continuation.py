"""Prefix-exact continuation: the next prompt is the held ids plus only what the template adds."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tests.support import scripts
from tests.support.scripts import Sample
from tests.support.tiny_model import (
    TEMPLATE_PATH,
    build_tiny_model,
    encode_completion,
    encode_prompt,
    render_prompt,
)
from vllm_mcp_ext.engine.continuation import HistoryRewritten, suffix_after


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(build_tiny_model())


def turn_pairs(*, reasoning: bool) -> list[tuple[Sample, Sample]]:
    """(turn N, turn N+1) of every script, with or without <think> reasoning."""
    pairs = []
    for resolved in scripts.resolved_scripts().values():
        if bool(resolved.script.reasoning) != reasoning:
            continue
        samples = resolved.samples()
        pairs += list(pairwise(samples))
    return pairs


def continue_turn(tokenizer, turn: Sample, following: Sample, generated_ids: list[int]) -> list[int]:
    """What the plugin sends for turn N+1: turn N's prompt and output ids, then the suffix."""
    template = TEMPLATE_PATH.read_text()
    suffix = suffix_after(
        render_prompt(tokenizer, template, turn),
        tokenizer.decode(generated_ids, skip_special_tokens=False),
        render_prompt(tokenizer, template, following),
    )
    held = encode_prompt(tokenizer, turn) + generated_ids
    return held + tokenizer.encode(suffix, add_special_tokens=False)


def test_next_prompt_starts_with_the_previous_prompt_and_output_ids(tokenizer) -> None:
    pairs = turn_pairs(reasoning=False)
    assert len(pairs) >= 10
    for turn, following in pairs:
        held = encode_prompt(tokenizer, turn) + encode_completion(tokenizer, turn)
        continued = continue_turn(tokenizer, turn, following, encode_completion(tokenizer, turn))
        assert continued[: len(held)] == held, (turn.script, turn.turn)
        # The tiny model's own template renders its turns as it writes them: the continuation
        # is token for token the full re-render, so the model stays on script.
        assert continued == encode_prompt(tokenizer, following), (turn.script, turn.turn)


def test_the_model_keeps_its_own_spelling_of_a_call(tokenizer) -> None:
    """A model that writes compact JSON: the template would re-render it spaced; the held ids stay."""
    turn, following = next(p for p in turn_pairs(reasoning=False) if p[0].script == "one_call")
    compact = '<tool_call>\n{"name":"add","arguments":{"a":2,"b":3}}\n</tool_call><|im_end|>'
    generated = tokenizer.encode(compact, add_special_tokens=False)
    continued = continue_turn(tokenizer, turn, following, generated)
    held = encode_prompt(tokenizer, turn) + generated
    assert continued[: len(held)] == held
    assert tokenizer.decode(continued[len(held) :], skip_special_tokens=False).startswith(
        "\n<|im_start|>user\n<tool_response>\n5\n</tool_response>"
    )
    assert continued != encode_prompt(tokenizer, following)  # what a full re-render would give


def test_a_template_that_drops_reasoning_falls_back(tokenizer) -> None:
    (turn, following), *_ = turn_pairs(reasoning=True)
    with pytest.raises(HistoryRewritten, match="model's turn"):
        continue_turn(tokenizer, turn, following, encode_completion(tokenizer, turn))


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
