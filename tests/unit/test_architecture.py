"""docs/architecture.md is the description of record: its layer table and protocol list hold
against the code's imports (read with ast; nothing is imported)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "perfsuite"
DOC = REPO / "docs" / "architecture.md"
MAX_CHAIN = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """perfsuite's modules, the shipped suite's test files left out (test code, not a layer)."""
    return {module_name(p): p for p in PACKAGE.rglob("*.py")
            if "__pycache__" not in p.parts and "suite" not in p.relative_to(PACKAGE).parts[:1]}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The perfsuite modules `name` imports, anywhere in it (TYPE_CHECKING and function bodies
    included): `from pkg import sub` names the submodule, not the package."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            subs = {f"{base}.{alias.name}" for alias in node.names} & set(known)
            found |= subs
            if base in known and len(subs) < len(node.names):
                found.add(base)
    return found - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer_table() -> dict[str, int]:
    """`perfsuite/x/` or `perfsuite/x.py` -> its layer, from the doc's table."""
    rows = re.findall(r"^\| (\d+) \| `(perfsuite/[^`]*)` \|", DOC.read_text(), re.MULTILINE)
    assert rows, "docs/architecture.md has no layer table"
    return {where: int(layer) for layer, where in rows}


def layer_of(name: str, table: dict[str, int]) -> tuple[str, int]:
    """The table row that holds module `name`: its file's row, else its innermost package's."""
    path = modules()[name].relative_to(REPO).as_posix()
    if path in table:
        return path, table[path]
    folders = [where for where in table if where.endswith("/") and path.startswith(where)]
    assert folders, f"{path} is in no row of docs/architecture.md's layer table"
    where = max(folders, key=len)
    return where, table[where]


def test_every_package_and_top_level_module_has_a_row():
    table = layer_table()
    packages = {f"{p.parent.relative_to(REPO).as_posix()}/" for p in PACKAGE.rglob("__init__.py")
                if "suite" not in p.relative_to(PACKAGE).parts[:1] and p.parent != PACKAGE}
    top = {p.relative_to(REPO).as_posix() for p in PACKAGE.glob("*.py")}
    missing = sorted((packages | top) - set(table))
    assert not missing, f"not in docs/architecture.md's layer table: {missing}"
    stale = sorted(w for w in table if not (REPO / w).exists())
    assert not stale, f"docs/architecture.md names what no longer exists: {stale}"


def test_imports_run_downward_only():
    table = layer_table()
    upward = []
    for name, targets in graph().items():
        where, layer = layer_of(name, table)
        for target in targets:
            to, to_layer = layer_of(target, table)
            if to_layer > layer:
                upward.append(f"{name} (layer {layer}) imports {target} (layer {to_layer})")
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_circle_and_no_chain_longer_than_10():
    edges = graph()
    depth: dict[str, int] = {}
    chain_of: dict[str, list[str]] = {}

    def visit(name: str, stack: list[str]) -> int:
        if name in stack:
            pytest.fail(f"import circle: {' -> '.join([*stack[stack.index(name):], name])}")
        if name not in depth:
            below = [(visit(t, [*stack, name]), t) for t in sorted(edges[name])]
            deepest = max(below, default=(0, ""))
            depth[name] = deepest[0] + 1
            chain_of[name] = [name, *chain_of.get(deepest[1], [])]
        return depth[name]

    longest = max(edges, key=lambda name: visit(name, []))
    assert depth[longest] <= MAX_CHAIN, " -> ".join(chain_of[longest])


def test_every_public_protocol_is_described():
    text = DOC.read_text().split("## Protocols", 1)[1].split("\n## ", 1)[0]
    declared = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(base, "attr", getattr(base, "id", "")) for base in node.bases}
                if bases & {"Protocol", "ABC"}:
                    declared.append(node.name)
    assert declared, "no protocol found: the scan is broken"
    missing = [name for name in declared if f"`{name}`" not in text]
    assert not missing, f"public protocols not in docs/architecture.md's Protocols: {missing}"


def test_unit_test_folders_mirror_the_packages():
    tests = REPO / "tests" / "unit"
    folders = {p.relative_to(tests).as_posix() for p in tests.rglob("*")
               if p.is_dir() and p.name != "__pycache__"}
    stray = sorted(f for f in folders if not (PACKAGE / f / "__init__.py").is_file())
    assert not stray, f"tests/unit folders that name no package of perfsuite: {stray}"


def test_unit_tests_run_no_pytest():
    """pytest's own end-to-end runs (pytester) live in tests/e2e/."""
    def runs_pytest(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.arg) and node.arg == "pytester":
                return True
            if isinstance(node, ast.Attribute) and node.attr.startswith("runpytest"):
                return True
        return False

    tests = REPO / "tests" / "unit"
    running = sorted(p.relative_to(REPO).as_posix() for p in tests.rglob("test_*.py")
                     if runs_pytest(p))
    assert not running, f"unit-test files that run pytest (move those tests to tests/e2e/): {running}"


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The reading of imports sees a relative import, a submodule import and a package import."""
    (tmp_path / "perfsuite" / "a").mkdir(parents=True)
    files = {"perfsuite/__init__.py": "", "perfsuite/a/__init__.py": "",
             "perfsuite/a/x.py": "from . import y\nfrom perfsuite.a import y as z\n",
             "perfsuite/a/y.py": "import perfsuite.a\nfrom perfsuite import a\n"}
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    known = {"perfsuite": Path(), "perfsuite.a": Path(), "perfsuite.a.x": Path(),
             "perfsuite.a.y": Path()}
    assert imports("perfsuite.a.x", tmp_path / "perfsuite/a/x.py", known) == {"perfsuite.a.y"}
    assert imports("perfsuite.a.y", tmp_path / "perfsuite/a/y.py", known) == {"perfsuite.a"}
