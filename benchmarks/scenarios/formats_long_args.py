"""Long tool-call arguments in every popular format: the streaming parse's cost per token.

In process, no server: one call whose string argument is about N tokens, written in each family's
own syntax (``tests/support/formats.py``) and fed one token per engine output through the
plugin's `ChatTemplateParser` over vLLM's ``--tool-call-parser`` for that family (what stock chat
completions run too; hermes also with the plugin's incremental parser). The families are
interleaved and each keeps its best of a few runs, so the ratios side by side in one run mean
something on a busy machine: ``growth`` is the cost per token at the longest argument over the
cost at the shortest (1.0: linear, the cost of a token does not depend on what came before),
``vs_hermes`` the cost per token over the plugin's hermes path at the same length.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import table
from benchmarks.context import Context

FAMILIES = ("hermes", "qwen3_coder", "llama3_json", "pythonic", "mistral", "deepseek_v31", "kimi_k2", "glm47")
HERMES_VLLM = "hermes (vLLM's parser)"


async def run(ctx: Context) -> dict[str, Any]:
    return measure(ctx.mode.format_arg_tokens, ctx.mode.long_arg_repeats)


def measure(lengths: tuple[int, ...], repeats: int) -> dict[str, Any]:
    variants = {name: _variant(name, incremental=True) for name in FAMILIES}
    variants[HERMES_VLLM] = _variant("hermes", incremental=False)
    results: dict[str, dict[str, Any]] = {name: {"us_per_token": {}} for name in variants}
    for n in lengths:
        turns = {name: variant.turn(n) for name, variant in variants.items()}
        best = {name: float("inf") for name in variants}
        for _ in range(repeats):
            for name, variant in variants.items():  # interleaved
                best[name] = min(best[name], variant.seconds(turns[name]))
        for name, seconds in best.items():
            results[name]["us_per_token"][n] = seconds / len(turns[name][0]) * 1e6
    shortest, longest = lengths[0], lengths[-1]
    hermes = results["hermes"]["us_per_token"]
    rows = []
    for name, entry in results.items():
        us = entry["us_per_token"]
        entry["growth"] = us[longest] / us[shortest]
        entry["vs_hermes"] = {n: us[n] / hermes[n] for n in lengths}
        rows.append([name, *(us[n] for n in lengths), entry["growth"], entry["vs_hermes"][longest]])
    table(
        f"formats_long_args: us per token of one call, one token per delta (best of {repeats}, interleaved)",
        [
            "format",
            *(f"{n} tokens" for n in lengths),
            f"growth {shortest}->{longest}",
            f"vs hermes at {longest}",
        ],
        rows,
    )
    return {"repeats": repeats, "lengths": list(lengths), "formats": results}


class _Variant:
    def __init__(self, family: Any, incremental: bool):
        from tests.support import stock_chat
        from tests.support.formats import tokenizer_for

        self.family = family
        self.incremental = incremental
        self.tokenizer = tokenizer_for(family)
        self.parser_cls = stock_chat.parser_class(family, reasoning=False)

    def turn(self, n: int) -> tuple[list[int], list[str], Any]:
        """A call whose argument is ``n`` tokens (the format's tokenizer: one per byte), its ids,
        each token's text, and the request it answers."""
        from mcp import types

        from tests.support import stock_chat
        from tests.support.formats import model_output

        words = " ".join(f"w{i % 97}" for i in range(n))[:n]
        text = model_output(self.family, [("add_note", {"text": words})])
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        pieces = [piece for piece, _ in stock_chat.token_deltas(self.family, text)]
        tool = types.Tool(
            name="add_note",
            input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        )
        chat = stock_chat.serving_chat(self.family, self.parser_cls)
        return ids, pieces, stock_chat.stock_request(chat, [tool])

    def seconds(self, turn: tuple[list[int], list[str], Any]) -> float:
        from vllm_mcp_ext.engine.parser import ChatTemplateParser

        ids, pieces, request = turn
        vllm_parser = self.parser_cls(
            self.tokenizer, request.tools, chat_template_kwargs={}, model_config=None
        )
        parser = ChatTemplateParser(vllm_parser, request, incremental=self.incremental)
        last = len(ids) - 1
        calls = 0
        start = time.perf_counter()
        for i, (piece, token) in enumerate(zip(pieces, ids, strict=True)):
            calls += len(parser.feed(piece, [token], [1, 2, 3], i == last))
        calls += len(parser.close())
        elapsed = time.perf_counter() - start
        assert calls, f"{self.family.name}: the parser found no call"
        return elapsed


def _variant(name: str, incremental: bool) -> _Variant:
    from tests.support.formats import BY_NAME

    return _Variant(BY_NAME[name], incremental)
