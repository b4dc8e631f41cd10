"""An engine-level probe for the kv_hold benchmark: does vLLM's streaming input (a "resumable"
request, `AsyncLLM.generate` fed by an async generator of `StreamingInput` chunks) keep a waiting
conversation's KV blocks while its tool runs, on the CPU backend, with a cache too small for all?

The plugin does not drive turns that way, so this runs vLLM's `AsyncLLM` in process, without the
plugin, on the token counts the plugin's evicting arm measured (each agent's prompt per turn and
output per turn), with random token ids (a shared head as long as the system prompt and tools,
then the agent's own tokens): (a) one request per turn carrying the whole conversation, as the
plugin does today (the prefix cache serves what survived); (b) one streaming-input session per
agent, each later turn a chunk with only the new tokens. Every turn writes its planned number of
tokens (``ignore_eos``). The engine's own count of the tokens it computed comes from a scheduler
subclass (``--scheduler-cls``) that adds up every step's scheduled tokens; prefill = that minus
the decode steps.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import percentile

COUNT_FILE = "KV_PROBE_COUNT_FILE"
STALLED_AFTER_S = 150  # an arm not done by then is reported stalled (held sessions can fill the cache)

try:
    from vllm.v1.core.sched.scheduler import Scheduler
except ImportError:  # the shapes below are used without vLLM
    pass
else:

    class CountingScheduler(Scheduler):
        """vLLM's scheduler, writing the tokens scheduled so far to ``$KV_PROBE_COUNT_FILE``."""

        total = 0

        def schedule(self, *args: Any, **kwargs: Any) -> Any:
            output = super().schedule(*args, **kwargs)
            if output.total_num_scheduled_tokens:
                CountingScheduler.total += output.total_num_scheduled_tokens
                Path(os.environ[COUNT_FILE]).write_text(str(CountingScheduler.total))
            return output


@dataclass(frozen=True)
class Agent:
    """One agent's turns: the whole prompt of each turn and what the model writes in it."""

    prompts: tuple[int, ...]
    outputs: tuple[int, ...]


def shapes(turn_tokens: list[list[list[int]]]) -> list[Agent]:
    """From each agent's [prompt, output] tokens per turn."""
    return [Agent(tuple(p for p, _ in turns), tuple(o for _, o in turns)) for turns in turn_tokens]


class Tokens:
    """Each agent's token ids: a shared head, then its own, grown turn by turn."""

    def __init__(self, agents: list[Agent], shared: int, vocab: int):
        pick = random.Random(0)
        head = [pick.randrange(3, vocab) for _ in range(shared)]
        longest = max(max(a.prompts) + max(a.outputs) for a in agents)
        self.ids = [head + [pick.randrange(3, vocab) for _ in range(longest - shared)] for _ in agents]


async def probe(model: Path, blocks: int, block_size: int, max_model_len: int, agents: list[Agent],
                shared: int, tool_s: float, stagger_s: float, dtype: str = "float32",
                load_format: str = "auto", memory: float = 0.15) -> dict[str, Any]:  # fmt: skip
    from transformers import AutoConfig
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    count = Path(tempfile.mkdtemp()) / "scheduled"
    count.write_text("0")
    os.environ[COUNT_FILE] = str(count)  # the engine process inherits it
    vocab = AutoConfig.from_pretrained(model).vocab_size
    tokens = Tokens(agents, shared, vocab)
    args = AsyncEngineArgs(
        model=str(model), dtype=dtype, load_format=load_format, enforce_eager=True, block_size=block_size,
        max_model_len=max_model_len, num_gpu_blocks_override=blocks, gpu_memory_utilization=memory,
        enable_prefix_caching=True, scheduler_cls="benchmarks.kv_sessions.CountingScheduler",
        disable_log_stats=True,
    )  # fmt: skip
    engine = AsyncLLM.from_engine_args(args)
    result: dict[str, Any] = {"blocks": blocks, "kv_tokens": blocks * block_size}
    try:
        for name, turns in (("per_turn_requests", _per_turn), ("sessions", _session)):
            await engine.reset_prefix_cache()
            before = int(count.read_text())
            start = time.perf_counter()
            runs = [turns(engine, tokens.ids[i], agent, f"{name}-{i}", tool_s, i * stagger_s)
                    for i, agent in enumerate(agents)]  # fmt: skip
            try:
                timings = await asyncio.wait_for(asyncio.gather(*runs), timeout=STALLED_AFTER_S)
            except TimeoutError:
                result[name] = {"stalled": True, "after_s": time.perf_counter() - start}
                continue
            scheduled = int(count.read_text()) - before
            decode = sum(sum(n - 1 for n in a.outputs) for a in agents)
            later = [t for agent in timings for t in agent[1:]]
            result[name] = {
                "stalled": False,
                "wall_s": time.perf_counter() - start,
                "prefill_computed_tokens": scheduled - decode,
                "prefilled_again_tokens": scheduled - decode - _needed(agents, shared, block_size),
                "later_turn_p50_s": percentile(later, 50),
                "later_turn_p95_s": percentile(later, 95),
            }
    finally:
        engine.shutdown()
    return result


def _needed(agents: list[Agent], shared: int, block: int) -> int:
    """Prefill no cache can avoid: every first prompt (the shared head's full blocks once), and
    each later turn's new tokens (the previous turn's last output token, never computed, and
    what came after it)."""
    cold = sum(a.prompts[0] for a in agents) - (len(agents) - 1) * (shared // block) * block
    new = sum(
        a.prompts[k] - a.prompts[k - 1] - a.outputs[k - 1] + 1
        for a in agents
        for k in range(1, len(a.prompts))
    )
    return cold + new


def _params(n: int) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(max_tokens=n, ignore_eos=True, temperature=0, output_kind=RequestOutputKind.DELTA)


async def _per_turn(
    engine: Any, ids: list[int], agent: Agent, rid: str, tool_s: float, delay: float
) -> list[float]:
    """One request per turn with the whole conversation (its outputs as written), as the plugin
    sends it."""
    from vllm.inputs import TokensPrompt

    await asyncio.sleep(delay)
    seconds, conversation = [], list(ids[: agent.prompts[0]])
    for k, out in enumerate(agent.outputs):
        if k:
            await asyncio.sleep(tool_s)
            conversation += ids[len(conversation) : agent.prompts[k]]  # the tool result, the template
        start = time.perf_counter()
        async for output in engine.generate(
            TokensPrompt(prompt_token_ids=list(conversation)), _params(out), f"{rid}-{k}"
        ):
            conversation += output.outputs[0].token_ids if output.outputs else []
        seconds.append(time.perf_counter() - start)
    return seconds


async def _session(
    engine: Any, ids: list[int], agent: Agent, rid: str, tool_s: float, delay: float
) -> list[float]:
    """One streaming-input session: the first prompt, then per turn only the new tokens, led by
    the previous turn's last output token (vLLM drops the last sampled token at a chunk's end)."""
    from vllm.engine.protocol import StreamingInput
    from vllm.inputs import TokensPrompt

    await asyncio.sleep(delay)
    turn_done = asyncio.Event()
    sent: list[float] = []
    conversation = list(ids[: agent.prompts[0]])

    async def chunks() -> AsyncGenerator[StreamingInput, None]:
        held = 0  # tokens the session holds computed
        for k, out in enumerate(agent.outputs):
            if k:
                await turn_done.wait()
                turn_done.clear()
                await asyncio.sleep(tool_s)
                conversation.extend(ids[len(conversation) : agent.prompts[k]])
            sent.append(time.perf_counter())
            yield StreamingInput(TokensPrompt(prompt_token_ids=conversation[held:]), _params(out))
            held = agent.prompts[k] + out - 1

    seconds = []
    async for output in engine.generate(chunks(), _params(agent.outputs[0]), rid):
        if output.outputs:
            conversation.extend(output.outputs[0].token_ids)
            if output.outputs[0].finish_reason is not None:
                seconds.append(time.perf_counter() - sent[-1])
                turn_done.set()
    return seconds
