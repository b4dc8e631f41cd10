"""Per-turn prompt and cached tokens of a 4-tool-call conversation: the plugin (continuing the
held tokens) against a client loop over chat completions (a full re-render each turn).

The model writes its calls as the template renders them ("spaced") or in compact JSON, as many
models do; a re-render then spells the model's turn otherwise and the cache misses from there.
"""

from __future__ import annotations

import itertools
from typing import Any

from benchmarks.common import ClientLoop, PluginLoop, fetch_trace, table
from benchmarks.context import Context
from benchmarks.scripted import Plan

CALLS = (1, 1, 1, 1)
ARGS = '[{"a":1,"b":2},{"a":2,"b":3},{"a":3,"b":4},{"a":4,"b":5}]'


def reusable(previous_prompt: int, previous_output: int, prompt: int, block: int) -> int:
    """Tokens of this prompt the prefix cache can serve at best: the full blocks the engine
    computed in the previous turn (all but its last sampled token), short of the last token."""
    return min((previous_prompt + previous_output - 1) // block, (prompt - 1) // block) * block


async def run(ctx: Context) -> dict[str, Any]:
    block = ctx.mode.block_size
    data: dict[str, Any] = {"block_size": block, "styles": {}}
    rows = []
    async with ClientLoop(ctx.stack) as client_loop:
        plugin = PluginLoop(ctx.stack, ctx.http)
        for style in ("spaced", "compact"):
            # different arguments each turn: a call repeated with the same ones does not run again
            plan = Plan(calls=CALLS, tool="add", args=ARGS, json_style=style)
            per_variant: dict[str, list[list[dict[str, Any]]]] = {"a": [], "b": []}
            for _ in range(ctx.mode.conversations):
                outcome = await plugin(plan, stream=False)
                trace = await fetch_trace(ctx.http, ctx.stack, outcome.response_id)
                per_variant["a"].append(trace["turns"])
                per_variant["b"].append((await client_loop(plan)).turns)
            summary = {k: _reuse(v, block) for k, v in per_variant.items()}
            data["styles"][style] = {k: {"conversations": v, **summary[k]} for k, v in per_variant.items()}
            for key, name in (("a", "plugin (continues held tokens)"), ("b", "client loop (re-renders)")):
                s = summary[key]
                rows.append([style, f"({key}) {name}", *s["cached_per_turn"], s["ratio"]])
    turns = len(CALLS) + 1
    table(
        f"turn_prefix: cached / reusable tokens per turn, {len(CALLS)} tool calls (block {block})",
        ["model writes", "variant", *(f"turn {i}" for i in range(turns)), "reuse ratio"],
        rows,
    )
    return data


def _reuse(conversations: list[list[dict[str, Any]]], block: int) -> dict[str, Any]:
    cached_total = reusable_total = 0
    cells: list[str] = []
    for conv in conversations[:1]:
        cells = [f"{conv[0]['cached_tokens']}/{conv[0]['prompt_tokens']}p"]
    per_turn: list[list[int]] = []
    for conv in conversations:
        turns = []
        for prev, turn in itertools.pairwise(conv):
            best = reusable(prev["prompt_tokens"], prev["output_tokens"], turn["prompt_tokens"], block)
            turns.append([turn["cached_tokens"], best])
            cached_total += min(turn["cached_tokens"], best)
            reusable_total += best
        per_turn.append(turns)
    first = per_turn[0] if per_turn else []
    cells += [f"{c}/{b}" for c, b in first]
    return {
        "cached_per_turn": cells,
        "cached_and_reusable_per_turn": per_turn,
        "ratio": cached_total / reusable_total if reusable_total else float("nan"),
    }
