"""Scripted model output in any tool-call format: a vLLM logits processor that makes a model write
a planned call in a named family's syntax (``tests/support/formats.py``), token for token.

A request opts in with a marker in its user message, ``[[format qwen3_coder]]``: while its prompt
holds no tool result the model writes the family's call of ``add`` with ``{"a": 2, "b": 3}``;
after a result (the tiny model's template renders one as ``<tool_response>``) it writes
"Done.". Then its end-of-turn token. The engine runs its forward pass for every token; only the
choice of the next token is fixed. Requests without a marker are left alone.

Load it with ``logits_processors=["tests.support.scripted_formats:FormatOutputs"]`` (the
repository root on ``PYTHONPATH``). The model's tokenizer must hold the family's tokens.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.formats import BY_NAME, Call

MARKER = re.compile(r"\[\[format ([\w-]+)\]\]")
TOOL_RESULT = "<tool_response>"
CALL: Call = ("add", {"a": 2, "b": 3})
ANSWER = "Done."


def marker(family: str) -> str:
    return f"[[format {family}]]"


def completion(family: str, results: int) -> str:
    """What the model writes with ``results`` tool results in its prompt."""
    return BY_NAME[family].calls([CALL]) if results == 0 else ANSWER


def planned_ids(tokenizer: Any, prompt_ids: list[int]) -> list[int] | None:
    prompt = tokenizer.decode(prompt_ids, skip_special_tokens=False)
    found = MARKER.search(prompt)
    if found is None:
        return None
    text = completion(found.group(1), prompt.count(TOOL_RESULT))
    return [*tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]


try:
    from tests.support.forced_outputs import ForcedOutputs
except ImportError:  # pragma: no cover - the helpers above serve clients without vLLM
    pass
else:

    class FormatOutputs(ForcedOutputs):
        """Force each marked request's next token; leave other requests alone."""

        plan = staticmethod(planned_ids)
