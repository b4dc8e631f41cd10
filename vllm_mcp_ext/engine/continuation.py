"""Continue a conversation from the tokens the engine already holds.

After a tool turn the engine holds the previous prompt and the tokens the model generated. The
next prompt is those ids, unchanged, plus only what the chat template adds after the model's
turn (the rest of the turn's closing, the tool results, the new generation prompt), so vLLM's
prefix cache serves everything up to the tool results. Re-rendering and re-tokenizing the whole
conversation instead gives different ids wherever the template writes the model's turn otherwise
than the model did (JSON spacing, token boundaries), and the cache misses from there on.

The check is on text, with the conversation rendered by the model's own template: the new
rendering must extend the previous prompt, and its next characters must be what the model
generated (whitespace aside). Where the template rewrites history (drops earlier reasoning,
changes the system prompt, reorders arguments), that fails and the caller re-renders in full.
"""

from __future__ import annotations


class HistoryRewritten(Exception):
    """The template does not render the new conversation as an extension of the held tokens."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def suffix_after(previous_prompt: str, generated: str, rendered: str) -> str:
    """The text to append to the held tokens so that they read as ``rendered``.

    ``generated`` is the model's output decoded with its special tokens (an end-of-turn token
    included, if it produced one). Raises `HistoryRewritten` when the template rewrites the
    earlier conversation or the model's turn.
    """
    if not rendered.startswith(previous_prompt):
        raise HistoryRewritten("the chat template renders the earlier conversation differently")
    rest = rendered[len(previous_prompt) :]
    end = _match_ignoring_whitespace(generated, rest)
    if end is None:
        raise HistoryRewritten("the chat template renders the model's turn otherwise than it was generated")
    return rest[end:]


def _match_ignoring_whitespace(generated: str, rendered: str) -> int | None:
    """Where in ``rendered`` the text of ``generated`` ends, comparing all but whitespace;
    None if ``rendered`` does not start with it."""
    if rendered.startswith(generated):
        return len(generated)
    i, n = 0, len(rendered)
    for char in generated:
        if char.isspace():
            continue
        while i < n and rendered[i].isspace():
            i += 1
        if i == n or rendered[i] != char:
            return None
        i += 1
    # Whitespace the model wrote last (after its end-of-turn token, say) is already held.
    tail = generated[len(generated.rstrip()) :]
    return i + len(tail) if rendered.startswith(tail, i) else i
