"""The Python API example at the top of docs/python-api.md, copied into a file and run as shown
(``python example.py``, with an ``mcp.json`` beside it), on the tiny model: a ``sitecustomize``
on the path swaps in the tiny model under the example's model name, vLLM's CPU flags and greedy
decoding. The example's own code, its ``__main__`` guard included, runs unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, SERVERS
from tests.support.doc_blocks import block

pytestmark = pytest.mark.e2e

SITECUSTOMIZE = """
import os

if os.environ.get("DOCS_TINY_MODEL"):
    from vllm_mcp_ext import McpEngine

    _init = McpEngine.__init__

    def _on_the_tiny_model(self, model, **kwargs):
        kwargs.update(
            served_model_name=[model],
            dtype="float32",
            enforce_eager=True,
            gpu_memory_utilization=0.15,
            block_size=32,
            max_model_len=2048,
            override_generation_config={"temperature": 0.0},
        )
        _init(self, os.environ["DOCS_TINY_MODEL"], **kwargs)

    McpEngine.__init__ = _on_the_tiny_model
"""


def test_the_python_api_example_runs_as_shown(tiny_model: Path, tmp_path: Path) -> None:
    example = block("docs/python-api.md", "import asyncio\nfrom vllm_mcp_ext import McpEngine")
    (tmp_path / "example.py").write_text(example.source)
    calculator = {"command": sys.executable, "args": [str(SERVERS / "calculator.py")]}
    (tmp_path / "mcp.json").write_text(json.dumps({"mcpServers": {"calc": calculator}}))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {
        **os.environ,
        "DOCS_TINY_MODEL": str(tiny_model),
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "VLLM_MCP_STORE": "off",
    }
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if not line.startswith("(")]  # vLLM's logs
    assert printed == ["['mcp_list_tools', 'mcp_call', 'message'] 2 plus 3 is 5."], done.stdout[-3000:]
