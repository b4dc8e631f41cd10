"""The shipped weights of the tiny gpt-oss (tests/support/harmony_model) are trained from the
prompts the plugin renders today; when a change alters them, retrain with
``python -m tests.support.harmony_model --refresh`` and commit ``trained.safetensors``."""

from __future__ import annotations

from tests.support.harmony_model import model_key, sequence, shipped_key


def test_harmony_model_shipped_weights_match_the_rendered_script() -> None:
    ids, spans = sequence()
    assert shipped_key() == model_key(ids, spans), "retrain: python -m tests.support.harmony_model --refresh"
