"""The installed package holds the plugin only: test helpers live in ``tests/``, never in ``vllm_mcp_ext``."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import vllm_mcp_ext

PACKAGE_DIR = Path(vllm_mcp_ext.__file__).parent


def test_no_testing_subpackage() -> None:
    modules = [m.name for m in pkgutil.walk_packages(vllm_mcp_ext.__path__, "vllm_mcp_ext.")]
    assert "vllm_mcp_ext.api" in modules  # the walk sees the subpackages
    assert not [m for m in modules if m.split(".")[1] == "testing"]
    assert not (PACKAGE_DIR / "testing").exists()


def test_package_never_imports_tests() -> None:
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(PACKAGE_DIR)}: {n}" for n in names if n.split(".")[0] == "tests"
            ]
    assert offenders == []


def test_package_ships_no_data_files() -> None:
    """Nothing but Python sources (a chat template or a model in the package would ship to users)."""
    extra = [
        p.relative_to(PACKAGE_DIR)
        for p in PACKAGE_DIR.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc", ".typed"}
    ]
    assert extra == []
