"""Tool turns continue the tokens the engine holds, and the prefix cache serves them."""

from __future__ import annotations

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from tests.support import scripts
from tests.support.tiny_model import encode_completion, encode_prompt

pytestmark = pytest.mark.e2e

BLOCK = 32  # --block-size of the e2e server: the prefix cache works in whole blocks


def test_cached_tokens_cover_the_earlier_turns(client: openai.OpenAI, vllm_server: str, tiny_model) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    samples = scripts.resolved_scripts()["two_sequential"].samples()
    prompts = [len(encode_prompt(tokenizer, s)) for s in samples]
    held = [p + len(encode_completion(tokenizer, s)) for p, s in zip(prompts, samples, strict=True)]

    r = client.responses.create(
        model="tiny",
        input=samples[0].messages[-1]["content"],
        tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
        temperature=0,
    )
    assert r.output[-1].content[0].text == "The answer is 50."
    assert r.usage.input_tokens == sum(prompts)
    # Every full block the engine computed in turn N (its prompt and output, all but the last
    # token) is served from the cache in turn N+1.
    expected = sum((n - 1) // BLOCK * BLOCK for n in held[:-1])
    cached = r.usage.input_tokens_details.cached_tokens
    assert expected <= cached <= r.usage.input_tokens - len(prompts)

    trace = httpx.get(f"{vllm_server}/v1/mcp/traces/{r.id}").json()
    turns = trace["turns"]
    assert [t["prompt_tokens"] for t in turns] == prompts
    assert [t["continued"] for t in turns] == [False, True, True]
    assert [t["held_tokens"] for t in turns] == [0, *held[:-1]]
    assert sum(t["cached_tokens"] for t in turns) == cached
    assert trace["calls"] and all(c["server"] == "calc" for c in trace["calls"])


def test_reasoning_the_template_drops_is_re_rendered(
    reasoning_client: openai.OpenAI, reasoning_server: str
) -> None:
    """The tiny template leaves earlier <think> out: the turn after it is a full re-render."""
    r = reasoning_client.responses.create(
        model="tiny",
        input="Think, then add 1 and 1.",
        tools=[{"type": "mcp", "server_label": "calc", "require_approval": "never"}],
        temperature=0,
    )
    assert r.output[-1].content[0].text == "1 plus 1 is 2."
    turns = httpx.get(f"{reasoning_server}/v1/mcp/traces/{r.id}").json()["turns"]
    assert [t["continued"] for t in turns] == [False, False]
    assert "model's turn" in turns[1]["rewritten"]
