"""The models the benchmarks serve. Quick mode: the tiny test model (trained, CPU). Full mode: a
Qwen3-0.6B-shaped config with random weights (``--load-format dummy``), on a GPU.

No model can be downloaded here, so the full-mode model borrows the tiny model's tokenizer and
chat template (vocabulary padded to Qwen3's 151,936 rows, so the embedding and LM head have
their real size); the benchmarks' scripted outputs make it call tools (`benchmarks.scripted`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

QWEN3_0_6B = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000,
    "max_position_embeddings": 40960,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


def qwen3_shaped(tiny_model: Path, out: Path) -> Path:
    """A directory vLLM serves with ``--load-format dummy``: config and tokenizer, no weights."""
    target = out / "qwen3-0.6b-shaped"
    target.mkdir(parents=True, exist_ok=True)
    tiny = json.loads((tiny_model / "config.json").read_text())
    config = {**QWEN3_0_6B, "eos_token_id": tiny["eos_token_id"], "pad_token_id": tiny.get("pad_token_id")}
    (target / "config.json").write_text(json.dumps(config, indent=2))
    generation = {"eos_token_id": tiny["eos_token_id"], "pad_token_id": tiny.get("pad_token_id")}
    (target / "generation_config.json").write_text(json.dumps(generation, indent=2))
    for name in TOKENIZER_FILES:
        if (tiny_model / name).exists():
            shutil.copy(tiny_model / name, target / name)
    return target
