"""A virtual environment with the previous major of the ``mcp`` SDK (1.x), for interoperability
tests: ``python -m tests.support.mcp1`` creates it (CI does, on a fresh machine); `mcp1_python`
returns its interpreter. It lives in the shared cache, built once under a file lock."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import venv
from pathlib import Path

PIN = "mcp==1.30.0"  # protocol 2025-11-25 (and 2025-06-18)
HOME = Path.home() / ".cache" / "vllm-mcp-ext" / "mcp1-venv"


def mcp1_python(create: bool = True) -> Path | None:
    """The interpreter of the 1.x environment; None when it is absent and ``create`` is off or
    the install failed (no package index)."""
    python = HOME / "bin" / "python"
    stamp = HOME / "installed.txt"
    if stamp.exists() and stamp.read_text().strip() == PIN:
        return python
    if not create:
        return None
    HOME.parent.mkdir(parents=True, exist_ok=True)
    with open(HOME.parent / "mcp1-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text().strip() == PIN:
            return python
        venv.EnvBuilder(with_pip=True, clear=True).create(HOME)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PIN],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-2000:])
            return None
        stamp.write_text(PIN)
    return python


if __name__ == "__main__":
    found = mcp1_python()
    print(found or "could not install the mcp 1.x environment")
    sys.exit(0 if found else 1)
