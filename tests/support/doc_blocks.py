"""The Python code blocks of README.md and docs/*.md, for the tests that check they run as shown.

A block fenced ```` ```python ```` is a program: copied into a file it runs (given the server or
model its text names). One fenced ```` ```python fragment ```` is an excerpt: it continues the
text around it (``client`` from an earlier block, ``await`` inside your own ``async def``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    fragment: bool
    source: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_blocks() -> list[Block]:
    """The blocks of the docs, and the example scripts (each one program)."""
    blocks = [Block(path, 1, False, path.read_text()) for path in sorted((ROOT / "examples").glob("*.py"))]
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for match in _FENCE.finditer(text):
            info = match.group(1).split()
            blocks.append(
                Block(path, text.count("\n", 0, match.start()) + 1, "fragment" in info, match.group(2))
            )
    return blocks


def block(path: str, starting: str) -> Block:
    """The block of ``path`` (relative to the repository) whose code starts with ``starting``."""
    found = [b for b in doc_blocks() if b.path == ROOT / path and b.source.startswith(starting)]
    assert len(found) == 1, (path, starting, found)
    return found[0]
