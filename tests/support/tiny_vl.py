"""A tiny BLIP-2-shaped model with random weights (served with ``--load-format dummy``): the tiny
text model (Qwen2) as its language model with the same tokenizer and chat template plus an
``<image>`` token, a 2-layer vision tower and Q-Former, and BLIP's PIL image processor. (vLLM's
Qwen2-VL, LLaVA and Gemma 3 modules import torchvision, which the CPU install here lacks.) It cannot answer sensibly; it
shows that images reach vLLM's multimodal processing and the engine: each image adds
`IMAGE_TOKENS` tokens to the prompt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

IMAGE_TOKEN = "<image>"
IMAGE_SIZE, PATCH = 56, 14
IMAGE_TOKENS = 8  # BLIP-2 query tokens: each image is this many tokens, whatever its size


def build_tiny_vl(text_model: Path, out: Path) -> Path:
    """Write the model directory ``out`` from the tiny text model at ``text_model``."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(text_model)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.save_pretrained(out)
    shutil.copy(text_model / "chat_template.jinja", out / "chat_template.jinja")
    text = json.loads((text_model / "config.json").read_text())
    text_config = {k: v for k, v in text.items() if k not in ("architectures", "transformers_version")}
    text_config["vocab_size"] = max(len(tokenizer), text["vocab_size"])
    config = {
        "architectures": ["Blip2ForConditionalGeneration"],
        "model_type": "blip-2",
        "dtype": "float32",
        "text_config": text_config,
        "vision_config": {
            "model_type": "blip_2_vision_model",
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH,
        },
        "qformer_config": {
            "model_type": "blip_2_qformer",
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "encoder_hidden_size": 128,
        },
        "num_query_tokens": IMAGE_TOKENS,
        "image_token_index": tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        "tie_word_embeddings": False,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    image_processor = {
        "image_processor_type": "BlipImageProcessorPil",
        "processor_class": "Blip2Processor",
        "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
        "do_convert_rgb": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "rescale_factor": 1 / 255,
    }
    (out / "preprocessor_config.json").write_text(json.dumps(image_processor, indent=2))
    processor = {"processor_class": "Blip2Processor", "num_query_tokens": IMAGE_TOKENS}
    (out / "processor_config.json").write_text(json.dumps(processor, indent=2))
    return out


if __name__ == "__main__":
    import sys

    print(build_tiny_vl(Path(sys.argv[1]), Path(sys.argv[2])))
