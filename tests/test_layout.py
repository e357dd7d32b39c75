"""The package's shape: no import circles, stages import only leftwards, the judge knows no pytest.

Read from the source (``ast``): every import that runs (module level or inside a function), leaving out
``if TYPE_CHECKING:`` blocks, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_t2ibias"
#: Modules kept for one release as re-exports of their new homes: nothing in the package may use them.
DEPRECATED = {
    "pytest_t2ibias.atomic",
    "pytest_t2ibias.baseline",
    "pytest_t2ibias.compare",
    "pytest_t2ibias.evaluate",
    "pytest_t2ibias.policy",
    "pytest_t2ibias.result",
    "pytest_t2ibias.stats",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    out = {}
    for name, path in modules.items():
        imported = _runtime_imports(path)
        # `from pkg import sub` imports pkg and maybe the submodule pkg.sub: keep what is a module of ours
        out[name] = {m for m in imported if m in modules and m != name}
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return components


def _is_package_init(graph: dict[str, set[str]], module: str) -> bool:
    return any(other.startswith(module + ".") for other in graph)


def test_the_runtime_import_graph_has_no_circles(graph: dict[str, set[str]]) -> None:
    # a package's __init__ importing its own submodules is not a circle of code: leave out edges from a
    # submodule to its parent package (Python initialises the parent first either way)
    pruned = {
        m: {d for d in deps if not (_is_package_init(graph, d) and m.startswith(d + "."))} for m, deps in graph.items()
    }
    assert _cycles(pruned) == []


def test_the_judge_imports_no_pytest_no_syrupy_and_no_images(graph: dict[str, set[str]]) -> None:
    for path in (PACKAGE / "judge").glob("*.py"):
        imported = _runtime_imports(path)
        heavy = {m for m in imported if m.split(".")[0] in {"pytest", "_pytest", "syrupy", "torch", "PIL"}}
        assert not heavy, (path.name, heavy)
        assert not {m for m in imported if m.startswith(("pytest_t2ibias.generate", "pytest_t2ibias.annotate"))}


def test_metrics_import_no_torch_and_nothing_to_their_right(graph: dict[str, set[str]]) -> None:
    stages = ("judge", "report", "plugin", "session", "snapshot", "results", "generate", "annotate")
    right = tuple(f"pytest_t2ibias.{stage}" for stage in stages)
    for path in (PACKAGE / "metrics").glob("*.py"):
        imported = _runtime_imports(path)
        assert not {m for m in imported if m.split(".")[0] == "torch"}, path.name
        assert not {m for m in imported if m.startswith(right)}, path.name


def test_nothing_uses_the_deprecated_modules(graph: dict[str, set[str]]) -> None:
    users = {m: sorted(deps & DEPRECATED) for m, deps in graph.items() if deps & DEPRECATED and m not in DEPRECATED}
    assert users == {}


@pytest.mark.parametrize("old", sorted(DEPRECATED))
def test_old_import_paths_still_work(old: str) -> None:
    import importlib

    module = importlib.import_module(old)
    assert module.__all__ and all(hasattr(module, name) for name in module.__all__)


def test_one_function_applies_the_correction() -> None:
    """``holm`` and ``benjamini_hochberg`` are called by ``judge.family.correct`` and nowhere else."""
    callers = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in ("holm", "benjamini_hochberg"):
                    callers.append(_module_name(path))
    assert sorted(set(callers)) == ["pytest_t2ibias.judge.family"]


def test_alpha_has_one_default() -> None:
    """The policy's default alpha is written once in code (``judge.policy.DEFAULT_ALPHA``)."""
    hits = [
        _module_name(p)
        for p in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value == 0.01
    ]
    assert hits == ["pytest_t2ibias.judge.policy"]


#: The most lines a fixture's body may have (its docstring left out): logic belongs in the session.
MAX_FIXTURE_LINES = 15


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    return name == "fixture"


def test_no_fixture_is_longer_than_fifteen_lines() -> None:
    """Every ``@pytest.fixture`` of the package returns a small object; what it needs to build one lives in
    the session (issue 25: the evaluate and aggregate fixtures had grown to 68 and 51 lines)."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not any(_is_fixture(d) for d in node.decorator_list):
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            lines = (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1 if body else 0
            if lines > MAX_FIXTURE_LINES:
                long.append(f"{_module_name(path)}.{node.name}: {lines} lines")
    assert long == [], f"fixtures over {MAX_FIXTURE_LINES} lines (move their logic into the session): {long}"
