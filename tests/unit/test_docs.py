"""Every Python block in README.md and docs/ is valid as shown: a program compiles and names
nothing it does not define or import (ruff's undefined-name check), a fragment compiles as the
body of an ``async def``; a program that starts vLLM's engine in-process does it under
``if __name__ == "__main__":`` (vLLM starts its engine core in a new process, which imports the
main module again). tests/e2e/test_docs.py runs the Python API example for real."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.doc_blocks import Block, doc_blocks

BLOCKS = doc_blocks()
PROGRAMS = [b for b in BLOCKS if not b.fragment]
ENGINES = {"McpEngine", "AsyncLLM", "LLM"}  # in-process vLLM engines


def names(block: Block) -> set[str]:
    tree = ast.parse(block.source)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        a.name.rsplit(".", 1)[-1] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    }


def test_the_docs_have_python_blocks_of_both_kinds() -> None:
    assert len(PROGRAMS) >= 5 and len(BLOCKS) - len(PROGRAMS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_a_block_compiles(block: Block) -> None:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if block.fragment else 0
    compile(block.source, block.name, "exec", flags=flags, dont_inherit=True)


@pytest.mark.parametrize("block", PROGRAMS, ids=lambda b: b.name)
def test_a_program_has_no_placeholder_that_fails_when_run(block: Block) -> None:
    """``{...}`` for a schema reads well and fails at run time (an Ellipsis is not JSON)."""
    tree = ast.parse(block.source)
    assert not [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value is Ellipsis]


def test_programs_define_every_name_they_use(tmp_path: Path) -> None:
    files = []
    for i, block in enumerate(PROGRAMS):
        files.append(tmp_path / f"block{i}.py")
        files[-1].write_text(block.source)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F821,F822,F823",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
    )
    report = done.stdout
    for i, block in enumerate(PROGRAMS):
        report = report.replace(f"block{i}.py", block.name)
    assert done.returncode == 0, report


@pytest.mark.parametrize("block", [b for b in PROGRAMS if names(b) & ENGINES], ids=lambda b: b.name)
def test_a_program_with_an_in_process_engine_runs_it_under_the_main_guard(block: Block) -> None:
    for statement in ast.parse(block.source).body:
        called = {
            node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for node in ast.walk(statement)
            if isinstance(node, ast.Call)
        }
        # a call as a statement (``asyncio.run(main())``), or an engine built at import
        runs = (isinstance(statement, ast.Expr) and called) or (
            isinstance(statement, ast.Assign | ast.AnnAssign) and called & ENGINES
        )
        assert not runs, (
            f"{block.name}: line {statement.lineno} runs at import; put it under if __name__ == '__main__':"
        )
