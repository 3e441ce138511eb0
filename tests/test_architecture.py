"""The shape of the code, checked so it stays true: imports point down the layers of pyproject's
import-linter contracts, no module imports itself back through others, imports inside functions are
the few optional / deferred ones and say why, files stay small, and strategy names live in the
registry (not in tables elsewhere)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tunebench.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "tunebench"
MAX_LINES = 400


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_import_linter_contracts_hold():
    # In a subprocess: lint-imports reads pyproject.toml from the working directory, and it reconfigures
    # logging, which would silence the tunebench logger for the tests that follow.
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def strongly_connected(graph) -> list[list[str]]:
    """Tarjan's algorithm over the module import graph: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycles():
    cycles = strongly_connected(grimp.build_graph("tunebench"))
    assert cycles == [], f"modules that import each other: {cycles}"


def test_imports_inside_functions_say_why():
    """Only optional heavy dependencies (and CLI commands deferring torch) import inside functions;
    the first import of each such group carries a comment with the reason."""
    bad = {str(p.relative_to(SRC)): found for p in sources() if (found := _unexplained(p))}
    assert bad == {}, f"imports inside functions without a reason: {bad}"


def _unexplained(path: Path) -> list[tuple[int, str]]:
    lines = path.read_text().splitlines()
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
        for imp in body:
            i = imp.lineno - 1
            while i > 0 and (
                not lines[i - 1].strip() or lines[i - 1].strip().startswith(("from ", "import "))
            ):
                i -= 1  # up to the first line of the group of imports (blank lines included)
            while not lines[i].strip():
                i += 1
            group = lines[i : imp.end_lineno]
            if not any("#" in line for line in group) and not lines[i - 1].strip().startswith("#"):
                out.append((imp.lineno, lines[imp.lineno - 1].strip()))
    return out


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_source_files_stay_small(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(SRC)}: {n} lines (at most {MAX_LINES}: split it by job)"


def test_no_tables_of_strategy_names_outside_the_registry():
    """A literal collection of two or more strategy names, or a comparison with one, outside the module
    that registers it is a name table waiting to go stale: read the strategies' attributes instead.
    Tasks may key their per-strategy `schedule` / `strategy_options` by name (configuration, like --opt)."""
    names = {name: cls.__module__ for name, cls in STRATEGIES.items()}
    found = []
    for path in sources():
        module = "tunebench." + ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        tree = ast.parse(path.read_text())
        allowed = _config_keys(tree)

        def named(node, module=module, allowed=allowed) -> list[str]:
            if isinstance(node, ast.Constant) and node.value in names and names[node.value] != module:
                return [] if id(node) in allowed else [node.value]
            return []

        for node in ast.walk(tree):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                hits = [n for e in node.elts for n in named(e)]
            elif isinstance(node, ast.Dict):
                hits = [n for k in node.keys if k is not None for n in named(k)]
            elif isinstance(node, ast.Compare):
                hits = [n for e in [node.left, *node.comparators] for n in named(e)]
                hits = hits * 2  # one literal compared is already a table of one
            else:
                continue
            if len(set(hits)) >= 2 or (isinstance(node, ast.Compare) and hits):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {sorted(set(hits))}")
    assert found == [], "strategy names outside the registry: " + ", ".join(found)


def _config_keys(tree: ast.AST) -> set[int]:
    """ids of the keys of class attributes `schedule` and `strategy_options` (a task's per-strategy settings)."""
    keys: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if set(targets) & {"schedule", "strategy_options"}:
                keys |= {id(k) for k in node.value.keys if k is not None}
    return keys
