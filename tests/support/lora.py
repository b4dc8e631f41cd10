"""LoRA adapters for the tiny model, written directly (peft's file format: ``adapter_config.json``
and ``adapter_model.safetensors``), so the suite needs no peft."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

RANK = 8


def write_lora_adapter(path: Path, base_model: Path, *, scale: float, seed: int = 0) -> Path:
    """An adapter on every layer's ``q_proj`` and ``v_proj``. ``scale`` 0 leaves the model as it
    is (B is zero, as peft initialises it); a large one changes what it writes."""
    config = json.loads((base_model / "config.json").read_text())
    hidden, head_dim = config["hidden_size"], config["head_dim"]
    outputs = {
        "q_proj": config["num_attention_heads"] * head_dim,
        "v_proj": config["num_key_value_heads"] * head_dim,
    }
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for module, out in outputs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(RANK, hidden, generator=generator) * 0.1
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(out, RANK, generator=generator) * scale
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "adapter_model.safetensors"))
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_model),
        "r": RANK,
        "lora_alpha": RANK,
        "lora_dropout": 0.0,
        "target_modules": sorted(outputs),
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "use_rslora": False,
        "use_dora": False,
    }
    (path / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    return path
