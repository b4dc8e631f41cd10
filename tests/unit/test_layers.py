"""Imports point one way: a module imports its own folder or a folder of a lower layer, never
one above it (docs/architecture.md draws the same table).

Every import counts, wherever it is written: at the top, inside a function, or under
``TYPE_CHECKING`` (an arrow is an arrow, even one only the type checker follows). A new folder or
top-level module fails until it is placed in `LAYERS`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import vllm_mcp_ext

PACKAGE_DIR = Path(vllm_mcp_ext.__file__).parent
PACKAGE = "vllm_mcp_ext"
ARCHITECTURE = PACKAGE_DIR.parent / "docs" / "architecture.md"

# Top to bottom. A name is a folder of the package or one of its top-level modules; folders in
# one layer are siblings and import nothing of each other.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("doors", ("api", "python_api", "cli")),
    ("door translations", ("chat", "messages", "proxy")),
    ("runtime", ("runtime",)),
    ("Responses core", ("responses",)),
    ("conversations", ("conversations",)),
    ("agent loop", ("loop",)),
    ("engine and events", ("engine", "events")),
    ("operator policy", ("policy",)),
    ("tool servers and store", ("servers", "store")),
    ("shared types", ("types",)),
    ("config and access", ("config", "access")),
    ("vLLM seam, limits, observability", ("_compat", "bounded_json", "observe", "redact")),
    ("errors", ("errors",)),
)


@dataclass(frozen=True)
class Arrow:
    source: str  # the importing module, dotted (vllm_mcp_ext.loop.runner)
    target: str  # the imported module
    line: int


def modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def arrows(found: dict[str, Path]) -> list[Arrow]:
    """Every import of a package module by another, top-level, local or TYPE_CHECKING alike."""
    result = []
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package):
                resolved = _resolve(target, found)
                if resolved is not None and resolved != name:
                    result.append(Arrow(name, resolved, node.lineno))
    return result


def _imported(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, *([node.module] if node.module else [])])
    # ``from a import b``: b is a submodule of a, or a name a defines
    return [f"{base}.{alias.name}" for alias in node.names]


def _resolve(target: str, found: dict[str, Path]) -> str | None:
    """The module ``target`` lands in: itself, or the nearest package that defines it."""
    if target.split(".")[0] != PACKAGE:
        return None
    while target not in found:
        target = target.rpartition(".")[0]
    return target


def place(module: str) -> str:
    """A module's folder, or the top-level module itself (``loop``, ``runtime``); ``""`` for the
    package's own ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(name: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> int | None:
    for index, (_, names) in enumerate(layers):
        if name in names:
            return index
    return None


def shown(module: str, found: dict[str, Path]) -> str:
    return str(found[module].relative_to(found[PACKAGE].parent))


def back_arrows(
    found: dict[str, Path], edges: list[Arrow], layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS
) -> list[str]:
    """Each import that does not point down, as a sentence that names it."""
    problems = []
    for arrow in edges:
        source, target = place(arrow.source), place(arrow.target)
        if source == target or source == "":  # within a folder; the package's lazy public names
            continue
        above, below = layer_of(source, layers), layer_of(target, layers)
        if above is None or below is None or below > above:
            continue  # unplaced names are reported by `unplaced`
        relation = "is below" if below < above else "is a sibling of"
        problems.append(
            f"{shown(arrow.source, found)}:{arrow.line} imports {shown(arrow.target, found)}: "
            f"{source} {relation} {target}"
        )
    return sorted(set(problems))


def cycles(edges: list[Arrow]) -> list[list[str]]:
    """Modules that import each other, directly or around a ring (each ring once, sorted)."""
    graph: dict[str, set[str]] = {}
    for arrow in edges:
        graph.setdefault(arrow.source, set()).add(arrow.target)
    rings = []
    for start in sorted(graph):
        ring = sorted(m for m in _reachable(graph, start) if start in _reachable(graph, m))
        if ring and ring not in rings:
            rings.append(ring)
    return rings


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    reached, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    return reached


def unplaced(found: dict[str, Path], layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> list[str]:
    names = {place(m) for m in found} - {""}
    return sorted(n for n in names if layer_of(n, layers) is None)


def test_imports_point_down_the_layers() -> None:
    found = modules()
    assert len(found) > 50  # the walk sees the package
    problems = back_arrows(found, arrows(found))
    assert not problems, "\n".join(problems)


def test_no_two_modules_import_each_other() -> None:
    """Within a folder too: an interface module never imports its implementations (a factory
    lives beside them), two halves of one concept are one module or a type moves down."""
    assert cycles(arrows(modules())) == []


def test_every_folder_and_top_level_module_has_a_layer() -> None:
    missing = unplaced(modules())
    assert not missing, f"place these in LAYERS (and docs/architecture.md): {missing}"


def test_layer_table_names_only_what_exists() -> None:
    names = {place(m) for m in modules()}
    assert [n for _, layer in LAYERS for n in layer if n not in names] == []


def test_architecture_doc_draws_the_same_layers() -> None:
    """docs/architecture.md's table lists the same layers, in the same order, with the same names."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("## Layers") : text.index("## Folders")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    drawn = [tuple(n.rstrip("/").removesuffix(".py") for n in re.findall(r"`([^`]+)`", row)) for row in rows]
    assert drawn == [names for _, names in LAYERS]


def test_architecture_doc_describes_every_folder() -> None:
    text = ARCHITECTURE.read_text()
    folders = text[text.index("## Folders") :]
    described = set(re.findall(r"^(\w+)(?:/|\.py)", folders, re.M))
    assert sorted({n for _, names in LAYERS for n in names} - described) == []


def test_the_walk_sees_local_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "loop").mkdir(parents=True)
    (package / "responses").mkdir()
    for folder in ("", "loop", "responses"):
        (package / folder / "__init__.py").write_text("")
    (package / "responses" / "request.py").write_text("REQUEST = 1\n")
    (package / "responses" / "run.py").write_text("RUN = 1\n")
    (package / "loop" / "runner.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from vllm_mcp_ext.responses.request import REQUEST\n"
        "def run():\n"
        "    from ..responses import run\n"
    )
    found = modules(package)
    layers = (("core", ("responses",)), ("loop", ("loop",)))
    problems = back_arrows(found, arrows(found), layers)
    assert problems == [
        "loop/runner.py:3 imports responses/request.py: loop is below responses",
        "loop/runner.py:5 imports responses/run.py: loop is below responses",
    ]


def test_a_ring_of_imports_is_found(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "store").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "store" / "__init__.py").write_text("")
    (package / "store" / "base.py").write_text("def open_store():\n    from . import sqlite\n")
    (package / "store" / "sqlite.py").write_text("from vllm_mcp_ext.store.base import open_store\n")
    assert cycles(arrows(modules(package))) == [["vllm_mcp_ext.store.base", "vllm_mcp_ext.store.sqlite"]]


def test_siblings_and_unplaced_folders_fail(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    for folder in ("engine", "events", "newthing"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "events" / "stream.py").write_text("import vllm_mcp_ext.engine\n")
    found = modules(package)
    layers = (("engine and events", ("engine", "events")),)
    assert back_arrows(found, arrows(found), layers) == [
        "events/stream.py:1 imports engine/__init__.py: events is a sibling of engine"
    ]
    assert unplaced(found, layers) == ["newthing"]
