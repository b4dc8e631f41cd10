"""Train the tiny gpt-oss on one harmony conversation until greedy decoding reproduces it;
`expand` makes the servable model from the trained weights.

gpt-oss's vocabulary has 201,088 ids; updating two 201,088-row matrices each step would take
most of the time on two CPU cores. Only the ids of the conversation are trained: their rows of
the embedding and of the output layer, with one more output "class" fixed at logit 0 that
stands for every other id (whose output rows are saved as zeros, so their logit is 0). The
trained token must beat it, so greedy decoding over the whole vocabulary picks it too; the saved
model is checked over the whole vocabulary, in bfloat16, as vLLM serves it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.support.harmony_model.tokenizer import write_tokenizer

MAX_STEPS = 800
LR = 3e-3


def train(
    compact: Path, ids: list[int], spans: list[tuple[int, int]], config: dict[str, Any], key: str
) -> None:
    """Train and save the trained weights only (a few hundred KB) to ``compact``."""
    import torch
    from safetensors.torch import save_file
    from transformers import GptOssConfig, GptOssForCausalLM

    torch.manual_seed(0)
    # One thread: the ops are tiny, and two threads on a busy 2-core machine spin-wait for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = GptOssForCausalLM(GptOssConfig(**config))
    used = sorted(set(ids))
    index = {token: i for i, token in enumerate(used)}
    hidden_size = config["hidden_size"]
    embed = torch.nn.Parameter(torch.randn(len(used), hidden_size) * 0.02)
    head = torch.nn.Parameter(torch.randn(len(used), hidden_size) * 0.02)
    body = [
        p for name, p in model.named_parameters() if not name.startswith(("model.embed_tokens", "lm_head"))
    ]
    optimizer = torch.optim.AdamW([*body, embed, head], lr=LR, weight_decay=0.0)
    local = torch.tensor([index[t] for t in ids[:-1]])
    positions = torch.tensor([p - 1 for a, b in spans for p in range(a, b)])  # predicting ids[p]
    targets = torch.tensor([index[ids[p]] for a, b in spans for p in range(a, b)])
    model.train()
    loss_value, step = float("inf"), 0
    for step in range(1, MAX_STEPS + 1):
        hidden = model.model(inputs_embeds=embed[local][None]).last_hidden_state[0, positions]
        logits = hidden @ head.T
        others = torch.zeros(len(positions), 1)  # every id not in the conversation
        loss = torch.nn.functional.cross_entropy(torch.cat([logits, others], dim=1), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_value = loss.item()
        if step % 25 == 0:
            print(f"step {step}: loss {loss_value:.4g} ({time.perf_counter() - start:.0f} s)", flush=True)
        if loss_value < 2e-4:
            break
    trained = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    trained = {k: v for k, v in trained.items() if not k.startswith(("model.embed_tokens", "lm_head"))}
    trained |= {"used_ids": torch.tensor(used), "embed_rows": embed.detach(), "head_rows": head.detach()}
    torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    print(f"trained in {seconds:.0f} s, {step} steps (loss {loss_value:.4g})", flush=True)
    save_file({k: v.contiguous() for k, v in trained.items()}, str(compact), metadata={"key": key})


def expand(
    compact: Path, directory: Path, ids: list[int], spans: list[tuple[int, int]], config: dict[str, Any]
) -> None:
    """The full model from the compact weights (the gpt-oss vocabulary's other rows are zeros),
    checked over the whole vocabulary in bfloat16, with its tokenizer."""
    import torch
    from safetensors.torch import load_file
    from transformers import GptOssConfig, GptOssForCausalLM

    torch.manual_seed(0)
    trained = load_file(str(compact))
    model = GptOssForCausalLM(GptOssConfig(**config))
    rows = trained.pop("used_ids")
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[rows] = trained.pop("embed_rows")
        model.lm_head.weight.zero_()
        model.lm_head.weight[rows] = trained.pop("head_rows")
    missing = set(trained) - {name for name, _ in model.named_parameters()}
    assert not missing, missing
    model.load_state_dict(trained, strict=False)
    model = model.to(torch.bfloat16).eval()
    positions = torch.tensor([p - 1 for a, b in spans for p in range(a, b)])
    targets = torch.tensor([ids[p] for a, b in spans for p in range(a, b)])
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([ids[:-1]])).last_hidden_state[0, positions]
        wrong = int((model.lm_head(hidden).argmax(-1) != targets).sum())
    if wrong:
        raise RuntimeError(
            f"the tiny gpt-oss does not reproduce its script: {wrong} of {len(targets)} tokens wrong"
        )
    model.save_pretrained(directory)
    write_tokenizer(directory)
