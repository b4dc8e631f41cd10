"""Skips that CI must never see: a missing piece (PostgreSQL, the JavaScript clients, the mcp 1.x
environment, the Open Responses spec) skips a test on a developer's machine, and fails it under
CI (the ``CI`` environment variable, which ``.ci/run`` sets), where the piece is installed."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``; under CI, fail it."""
    if in_ci():
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason)
