"""The tool-search benchmark's in-process part (no server): deferred tools cost a fraction of the
definition tokens, and the plugin's way of loading found tools keeps every turn's prefix."""

from __future__ import annotations

import asyncio

from openai_harmony import HarmonyEncodingName, load_harmony_encoding
from transformers import AutoTokenizer

from benchmarks.tool_search import definitions, measure
from tests.support.tiny_model import build_tiny_model


def test_deferred_tools_cost_a_fraction_and_keep_the_prefix() -> None:
    tools = asyncio.run(definitions())
    tokenizer = AutoTokenizer.from_pretrained(str(build_tiny_model()))
    o200k = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    loaded = measure(tokenizer, o200k, "loaded", tools)
    deferred = measure(tokenizer, o200k, "deferred", tools)
    rerendered = measure(tokenizer, o200k, "deferred_rerendered", tools)
    assert len(tools) == 121
    assert deferred["tool_tokens_per_request"] * 10 < loaded["tool_tokens_per_request"]
    assert [t.get("prefix_reuse") for t in deferred["turns"]] == [None, 1.0, 1.0]
    assert rerendered["turns"][1]["prefix_reuse"] < 1.0  # the tools list changed: the prefix broke
