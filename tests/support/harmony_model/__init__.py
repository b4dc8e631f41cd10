"""A tiny gpt-oss (``GptOssForCausalLM``) that calls an MCP tool in harmony on cue.

Trained on the CPU (about a minute and a half, one thread) to reproduce one scripted conversation under greedy
decoding, token for token, from exactly the prompts the plugin renders (`HarmonyTurns`, with the
tools of ``examples/servers/calculator.py`` and ``VLLM_SYSTEM_START_DATE`` pinned): the first
turn reasons and calls ``calc.add``; the turn after its result answers. The trained weights ship
here (``trained.safetensors``: the transformer and the rows of the ids the script uses); the
servable model (the full 201,088-row vocabulary, the tokenizer) is expanded from them once per
machine into ``~/.cache/vllm-mcp-ext/harmony-<hash>`` (the hash of the rendered ids, the config
and the trainer), in seconds. When the rendered ids change, it is retrained first.

    python -m tests.support.harmony_model             # print the model directory
    python -m tests.support.harmony_model --refresh   # retrain the shipped weights
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.harmony import analysis, call, final, output_ids

START_DATE = "2026-01-01"  # the servers serving this model pin VLLM_SYSTEM_START_DATE to it
QUESTION = "What is 2 plus 3?"
ARGUMENTS = '{"a": 2, "b": 3}'
ANSWER = "2 + 3 = 5."
REASONING = "Use calc.add."
SHIPPED = Path(__file__).with_name("trained.safetensors")  # the trained weights, vocabulary rows used only
CALCULATOR = Path(__file__).resolve().parents[3] / "examples" / "servers" / "calculator.py"
CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "num_local_experts": 2,
    "num_experts_per_tok": 1,
    "vocab_size": 201088,
    "max_position_embeddings": 4096,
    "sliding_window": 4096,
    "layer_types": ["sliding_attention", "full_attention"],
    "tie_word_embeddings": False,
    "eos_token_id": 200002,
    "pad_token_id": 199999,
    "rope_scaling": {
        "rope_type": "yarn",
        "factor": 1.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "truncate": False,
        "original_max_position_embeddings": 4096,
    },
}


def turn_outputs() -> tuple[list[int], list[int]]:
    return (
        output_ids(analysis(REASONING), call("calc.add", ARGUMENTS)),
        output_ids(final(ANSWER)),
    )


async def _calculator_tools() -> tuple[object, ...]:
    from vllm_mcp_ext.config import StdioServerSpec
    from vllm_mcp_ext.config.settings import Settings
    from vllm_mcp_ext.servers import ToolServerRegistry

    registry = ToolServerRegistry((StdioServerSpec("calc", sys.executable, (str(CALCULATOR),)),), Settings())
    await registry.start()
    try:
        connection = registry.get("calc")
        assert connection is not None
        return await connection.current_tools()
    finally:
        await registry.stop()


def sequence() -> tuple[list[int], list[tuple[int, int]]]:
    """The whole scripted conversation as the engine sees it on its second turn (prompt, first
    output, tool result, second output), and the spans of the two outputs (trained on)."""
    from vllm_mcp_ext.engine.harmony.render import ToolNames
    from vllm_mcp_ext.engine.harmony.turns import HarmonyHeld, harmony_prompt
    from vllm_mcp_ext.loop.toolset import ServerTools, ToolSet
    from vllm_mcp_ext.types.parts import TurnRequest

    tools = asyncio.run(_calculator_tools())
    toolset = ToolSet.build([ServerTools("calc", tools)])  # type: ignore[arg-type]
    servers = {t.exposed_name: (t.server_label, t.name) for t in toolset.tools}
    names = ToolNames.build(toolset.function_params(), servers)
    first, second = turn_outputs()
    old = os.environ.get("VLLM_SYSTEM_START_DATE")
    os.environ["VLLM_SYSTEM_START_DATE"] = START_DATE
    try:
        messages = [{"role": "user", "content": QUESTION}]
        turn = TurnRequest("r", list(messages), toolset.function_params(), "auto", None, tool_servers=servers)
        prompt1 = harmony_prompt(turn, names).token_ids
        call_id = "call_1"
        messages += [
            {
                "role": "assistant",
                "content": "",
                "reasoning": REASONING,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "add", "arguments": ARGUMENTS}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "5"},
        ]
        held = HarmonyHeld("", prompt1, first, messages=1)
        turn2 = TurnRequest(
            "r", messages, toolset.function_params(), "auto", None, held=held, tool_servers=servers
        )
        prompt2 = harmony_prompt(turn2, names).token_ids
    finally:
        if old is None:
            del os.environ["VLLM_SYSTEM_START_DATE"]
        else:
            os.environ["VLLM_SYSTEM_START_DATE"] = old
    assert prompt2[: len(prompt1) + len(first)] == prompt1 + first
    ids = prompt2 + second
    return ids, [(len(prompt1), len(prompt1) + len(first)), (len(prompt2), len(ids))]


def default_cache_dir() -> Path:
    env = os.environ.get("VLLM_MCP_EXT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vllm-mcp-ext"


def build_harmony_model(cache_dir: Path | None = None, refresh: bool = False) -> Path:
    """The model directory in the cache: expanded from the shipped trained weights
    (``trained.safetensors``, a few hundred KB) when they were trained from the current
    conversation and trainer, else trained first (about a minute and a half); ``refresh``
    retrains and replaces the shipped weights."""
    from tests.support.harmony_model import train as trainer

    ids, spans = sequence()
    key = model_key(ids, spans)
    root = cache_dir or default_cache_dir()
    target = root / f"harmony-{key}"
    if target.is_dir() and not refresh:
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / "harmony.lock"):
        if target.is_dir() and not refresh:
            return target
        tmp = root / f".harmony-{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if refresh or shipped_key() != key:
                print(f"training the tiny gpt-oss into {target} (shipped weights are for another script)")
                trainer.train(SHIPPED.with_suffix(".tmp"), ids, spans, _config(), key)
                os.replace(SHIPPED.with_suffix(".tmp"), SHIPPED)
            trainer.expand(SHIPPED, tmp, ids, spans, _config())
            shutil.rmtree(target, ignore_errors=True)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _config() -> dict[str, object]:
    """A copy of `CONFIG` for transformers, which writes into the dicts it is given
    (``GptOssConfig`` adds ``rope_theta`` to ``rope_scaling``): handed `CONFIG` itself, it changed
    `model_key` for the rest of the process, and a test after an e2e test found the shipped weights stale."""
    return copy.deepcopy(CONFIG)


def model_key(ids: list[int], spans: list[tuple[int, int]]) -> str:
    """What the weights are trained from: the ids, the config and the trainer."""
    from tests.support.harmony_model import train as trainer

    h = hashlib.sha256(json.dumps([ids, spans, CONFIG]).encode())
    h.update(Path(trainer.__file__).read_bytes())
    return h.hexdigest()[:16]


def shipped_key() -> str | None:
    if not SHIPPED.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(SHIPPED), "pt") as f:
        return (f.metadata() or {}).get("key")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
