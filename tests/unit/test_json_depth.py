"""The streamed-arguments tracker says "closed" wherever the text so far could be a whole JSON
object, on every way of cutting it into pieces: a call then starts exactly when it did with a
full parse at every closing brace."""

from __future__ import annotations

import json
import random

import pytest

from vllm_mcp_ext.loop.json_depth import JsonDepth

TEXTS = [
    '{"a": 2, "b": 3}',
    '{"code": "fn main() { let x = [1, 2]; if x[0] == 1 { println!(\\"}\\"); } }"}',
    '{"path": "C:\\\\dir\\\\", "q": "\\"{\\"", "u": "\\u007b\\u005d"}',
    '  {"nested": {"deep": [[{"k": "}"}]], "e": {}}, "t": true}  ',
    '{"text": "ends with a backslash \\\\"}',
    '{"a": "\\\\\\"}"}',
    "{}",
    '{"a": 1}}',  # extra brace: whole at the first close, as json.loads of the prefix says
    '{"a": }',  # balanced, not JSON
    '}{"a": 1}',
    '{"emoji": "😀 \\ud83d\\ude00", "ws": "\\n\\t"}',
]


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _check(pieces: list[str]) -> None:
    tracker, text = JsonDepth(), ""
    for piece in pieces:
        tracker.feed(piece)
        text += piece
        if _is_object(text):  # a whole object is never missed
            assert tracker.closed, (pieces, text)


@pytest.mark.parametrize("text", TEXTS)
def test_every_two_way_split_and_every_character(text: str) -> None:
    for cut in range(len(text) + 1):
        _check([text[:cut], text[cut:]])
    _check(list(text))


@pytest.mark.parametrize("seed", range(40))
def test_random_splits(seed: int) -> None:
    rng = random.Random(seed)
    text = rng.choice(TEXTS)
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 8))))
    _check([text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)])


def test_it_is_open_inside_strings_and_brackets() -> None:
    tracker = JsonDepth()
    states = []
    for piece in ['{"s": "', "}", "\\", '"', "}", '"', "}"]:
        tracker.feed(piece)
        states.append(tracker.closed)
    # inside the string the brace and the escaped quote do not count; the last brace closes it
    assert states == [False, False, False, False, False, False, True]
