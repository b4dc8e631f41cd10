"""The shipped tiny model is current: trained from today's scripts, template and trainer.

When one of these fails after a change to the scripts, the chat template, the trainer or to what
the plugin renders for a tool (its tool list or result text), run
``python -m tests.support.tiny_model --refresh`` and commit ``tests/support/tiny_model/model``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import scripts, tiny_model
from tests.support.tiny_model import SEARCH_DIR, SHIPPED_DIR, build_tiny_model, inputs_key, shipped_problem

REFRESH = "stale: run `python -m tests.support.tiny_model --refresh` and commit the model"


@pytest.fixture(scope="module")
def samples() -> list[scripts.Sample]:
    return scripts.all_samples()


def test_shipped_model_is_stamped_with_the_current_inputs(samples) -> None:
    info = json.loads((SHIPPED_DIR / "build_info.json").read_text())
    assert info["key"] == inputs_key(samples), REFRESH


def test_this_environment_feeds_the_shipped_model_the_ids_it_was_trained_on(samples) -> None:
    assert shipped_problem(samples) is None


def test_builder_returns_the_shipped_model(tmp_path: Path) -> None:
    assert build_tiny_model(tmp_path) == SHIPPED_DIR
    assert list(tmp_path.iterdir()) == []  # nothing trained


def test_the_searching_model_is_current_and_shipped(tmp_path: Path) -> None:
    """The searching model (the main one's scripts plus the search-only ones) is stamped with
    its inputs too, and returned without training."""
    assert shipped_problem(scripts.all_samples(search=True), search=True) is None, REFRESH + " --search"
    assert build_tiny_model(tmp_path, search=True) == SEARCH_DIR != SHIPPED_DIR
    assert list(tmp_path.iterdir()) == []


def test_shipped_model_is_small_and_complete() -> None:
    files = {p.name: p.stat().st_size for p in SHIPPED_DIR.iterdir()}
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "build_info.json",
    ):
        assert name in files
    assert sum(files.values()) < 8 * 2**20


def test_stale_stamp_trains_into_the_cache_once(tmp_path: Path, monkeypatch, samples) -> None:
    """A stale shipped model is not used: the builder trains (here: a stand-in) into the cache."""
    monkeypatch.setattr(tiny_model, "shipped_info", lambda search=False: {"key": "0" * 16})
    trained: list[str] = []

    def fake_train(out: Path, samples, key: str) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")
        trained.append(key)

    monkeypatch.setattr(tiny_model, "train_model", fake_train)
    first = build_tiny_model(tmp_path)
    assert first != SHIPPED_DIR and first.parent == tmp_path and (first / "config.json").exists()
    assert trained == [inputs_key(samples)]
    assert build_tiny_model(tmp_path) == first  # cached: not trained again
    assert len(trained) == 1
