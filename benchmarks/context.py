"""What a scenario gets: the mode's sizes, the running servers, an HTTP client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.stack import Mode, Stack


@dataclass
class Context:
    mode: Mode
    stack: Stack  # not started for in-process scenarios alone (`IN_PROCESS` in run.py)
    http: httpx.AsyncClient
    out: Path

    @property
    def model(self) -> Path:
        return self.stack.model
