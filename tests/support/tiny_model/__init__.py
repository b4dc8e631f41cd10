"""The tiny tool-calling model that the tests, the benchmarks and the demo serve.

A trained copy ships in ``tests/support/tiny_model/model/`` (1.8 MB), stamped in its
``build_info.json`` with the hash of what it was trained from: the scripts (with the tools and
tool results the plugin renders for them), the chat template and the trainer (``train.py``).
:func:`build_tiny_model` returns that copy when its stamp matches the current inputs and this
environment turns every prompt into the token ids it was trained on. Otherwise it trains a model
into the cache (``$VLLM_MCP_EXT_CACHE`` or ``~/.cache/vllm-mcp-ext``), once per machine, and says
why; ``--refresh`` retrains the shipped copy, which is committed with the change that made it
stale (``tests/unit/test_tiny_model.py`` fails until then).

    python -m tests.support.tiny_model             # print the model directory
    python -m tests.support.tiny_model --refresh   # retrain the shipped copy
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from tests.support import scripts
from tests.support.scripts import Sample
from tests.support.tiny_model import train as _train_module
from tests.support.tiny_model.train import (
    EOS_TOKEN,
    INFO_FILE,
    TEMPLATE_PATH,
    BuildInfo,
    TinyModelError,
    encode_all,
    encode_completion,
    encode_prompt,
    ids_digest,
    library_versions,
    render_prompt,
    token_id,
    train_model,
    verify_model,
)

__all__ = [
    "CACHE_ENV",
    "EOS_TOKEN",
    "SEARCH_DIR",
    "SHIPPED_DIR",
    "TEMPLATE_PATH",
    "TRAINING_INPUTS",
    "TinyModelError",
    "build_tiny_model",
    "default_cache_dir",
    "encode_completion",
    "encode_prompt",
    "inputs_key",
    "refresh_shipped",
    "render_prompt",
    "shipped_dir",
    "shipped_problem",
    "token_id",
    "verify_model",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "VLLM_MCP_EXT_CACHE"
SHIPPED_DIR = Path(__file__).with_name("model")
# The searching model: the same, also trained on the search-only scripts (tests/e2e/test_tool_search.py).
SEARCH_DIR = Path(__file__).with_name("model-search")
# The files the weights depend on besides the samples. The scripts enter as their samples (every
# prompt's messages and tools, as the plugin renders them, and every completion), not as
# scripts.py's bytes: a plugin change that alters a prompt is caught, an import that moves is not
# a reason to retrain.
TRAINING_INPUTS = (TEMPLATE_PATH, Path(_train_module.__file__))


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vllm-mcp-ext"


def inputs_key(samples: Sequence[Sample]) -> str:
    """Hash of what the model is trained from: template, trainer and the samples of every script."""
    h = hashlib.sha256()
    for path in TRAINING_INPUTS:
        h.update(path.read_bytes())
    # Key order matters: it is what the chat template renders, so it must change the key.
    h.update(json.dumps([asdict(s) for s in samples]).encode())
    return h.hexdigest()[:16]


def shipped_dir(search: bool = False) -> Path:
    return SEARCH_DIR if search else SHIPPED_DIR


def shipped_info(search: bool = False) -> dict | None:
    path = shipped_dir(search) / INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def shipped_problem(samples: Sequence[Sample], key: str | None = None, search: bool = False) -> str | None:
    """Why the shipped model cannot be used here, or None when it can."""
    info = shipped_info(search)
    if info is None:
        return f"no shipped model in {shipped_dir(search)}"
    key = inputs_key(samples) if key is None else key
    if info["key"] != key:
        return f"the shipped model was trained from inputs {info['key']}, they are now {key}"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shipped_dir(search))
    if ids_digest(encode_all(tokenizer, samples)) != info["ids_sha256"]:
        return (
            "this environment renders or tokenizes the prompts into other ids than the shipped model "
            f"was trained on (trained with {info['libraries']}, here {library_versions()})"
        )
    return None


def build_tiny_model(cache_dir: Path | None = None, search: bool = False) -> Path:
    """The directory of the tiny model (``search``: the searching one): the shipped one if it is
    current, else one trained into the cache."""
    samples = scripts.all_samples(search)
    key = inputs_key(samples)
    problem = shipped_problem(samples, key, search)
    if problem is None:
        return shipped_dir(search)
    # The ids depend on the rendering and tokenizing libraries too: the cache is per version set.
    versions = json.dumps(library_versions(), sort_keys=True).encode()
    cache_key = hashlib.sha256(key.encode() + versions).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"tiny-{cache_key}"
    if target.is_dir():
        return target
    logger.warning(
        "%s: training the tiny model into %s (minutes; `python -m tests.support.tiny_model --refresh` "
        "updates the shipped one)",
        problem,
        target,
    )
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"tiny-{cache_key}.lock"):
        if target.is_dir():  # built by another process while we waited
            return target
        tmp = root / f".tiny-{cache_key}.{os.getpid()}.tmp"
        _train_to(tmp, target, samples, key)
    return target


def refresh_shipped(search: bool = False) -> BuildInfo:
    """Retrain the shipped model (``search``: the searching one) from the current inputs and replace it."""
    samples = scripts.all_samples(search)
    target = shipped_dir(search)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    info = _train_to(tmp, None, samples, inputs_key(samples))
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)
    return info


def _train_to(tmp: Path, target: Path | None, samples: Sequence[Sample], key: str) -> BuildInfo:
    """Train into ``tmp``; rename it to ``target`` (if given) once it is complete and checked."""
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        info = train_model(tmp, samples, key)
        if target is not None:
            os.rename(tmp, target)
        return info
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
