"""gpt-oss's tokenizer (o200k_harmony) as Hugging Face ``tokenizer.json`` files, built offline
from the vocabulary that ships inside openai-harmony: each id's bytes (`decode_bytes`), merges
derived from the ranks as tiktoken's BPE implies them, the o200k pre-tokenizer pattern, and the
harmony special tokens. vLLM loads it like the real gpt-oss tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

from openai_harmony import HarmonyEncodingName, load_harmony_encoding
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE
from transformers.convert_slow_tokenizer import bytes_to_unicode

# o200k's pre-tokenizer pattern (as in gpt-oss's own tokenizer.json)
PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)
VOCAB_SIZE = 201088  # gpt-oss's embedding rows (the encoding's ids, padded)


def write_tokenizer(directory: Path) -> None:
    enc = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
    inner = enc._inner
    specials = {name: enc.encode(name, allowed_special="all")[0] for name in inner.special_tokens()}
    first_special = min(specials.values())
    ranks: dict[bytes, int] = {bytes(inner.decode_bytes([i])): i for i in range(first_special)}
    byte_encoder = bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(byte_encoder[c] for c in b)

    vocab = {text(b): i for b, i in ranks.items()}
    merges: list[tuple[int, str, str]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        # the merge that makes this token: the split whose halves both have the lowest ranks
        splits = [(token[:k], token[k:]) for k in range(1, len(token))]
        splits = [s for s in splits if s[0] in ranks and s[1] in ranks]
        if splits:
            left, right = min(splits, key=lambda s: max(ranks[s[0]], ranks[s[1]]))
            merges.append((rank, text(left), text(right)))
    merges.sort()
    tokenizer = Tokenizer(BPE(vocab, [(a, b) for _, a, b in merges], fuse_unk=False, ignore_merges=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    names = sorted(specials, key=specials.get)  # type: ignore[arg-type]
    # reserved ids without a name in the encoding still need a token each
    all_special = {specials[n]: n for n in names if specials[n] < VOCAB_SIZE}
    for i in range(first_special, VOCAB_SIZE):
        all_special.setdefault(i, f"<|reserved_{i}|>")
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(all_special[i], special=True) for i in sorted(all_special)])
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|startoftext|>",
        "eos_token": "<|return|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 131072,
        "clean_up_tokenization_spaces": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
