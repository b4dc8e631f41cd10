"""The shipped weights of the tiny gpt-oss (tests/support/harmony_model) are trained from the
prompts the plugin renders today; when a change alters them, retrain with
``python -m tests.support.harmony_model --refresh`` and commit ``trained.safetensors``."""

from __future__ import annotations

from pathlib import Path

from tests.support.harmony_model import SHIPPED, build_harmony_model, model_key, sequence, shipped_key

RETRAIN = "retrain: python -m tests.support.harmony_model --refresh"


def test_harmony_model_shipped_weights_match_the_rendered_script() -> None:
    ids, spans = sequence()
    assert shipped_key() == model_key(ids, spans), RETRAIN


def test_building_the_servable_model_leaves_the_script_key_as_it_was(tmp_path: Path) -> None:
    """The e2e suite builds the model in the pytest process; transformers once wrote into the
    config it was handed, and every later key check in that run found the weights stale."""
    ids, spans = sequence()
    key = model_key(ids, spans)
    assert shipped_key() == key, RETRAIN  # else building would retrain (minutes) and replace SHIPPED
    shipped = SHIPPED.read_bytes()
    assert build_harmony_model(tmp_path) == tmp_path / f"harmony-{key}"
    assert model_key(*sequence()) == key == shipped_key()
    assert SHIPPED.read_bytes() == shipped
