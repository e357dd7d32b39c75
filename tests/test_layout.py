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


def _all_imports(path: Path) -> set[str]:
    """Every import of a module, ``if TYPE_CHECKING:`` blocks included (a type-only import is still a
    dependency: the two modules cannot be understood, or moved, one without the other)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_import_circle_including_type_only_imports(graph: dict[str, set[str]]) -> None:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    full = {name: {m for m in _all_imports(path) if m in modules and m != name} for name, path in modules.items()}
    pruned = {
        m: {d for d in deps if not (_is_package_init(full, d) and m.startswith(d + "."))} for m, deps in full.items()
    }
    assert _cycles(pruned) == []


def test_suites_import_nothing_from_the_metric_engine() -> None:
    """The suite layer is the first stage: the engine registers its check of a category's `metrics` line
    with the schema (``register_metric_check``), the schema never calls up into it."""
    for path in (PACKAGE / "suites").glob("*.py"):
        assert not {m for m in _all_imports(path) if m.startswith("pytest_t2ibias.metrics.engine")}, path.name


#: Metric id literals that stay outside the registry's files, and why.
ID_LITERALS_ALLOWED = {
    # the assertion helpers are named after one metric each (assert_cbs_below is the composite's bound)
    "pytest_t2ibias.assertions": {"composite", "parity_difference", "gmr", "iemr", "car", "cas"},
    # a drivers kind, not the metric: the images with the lowest per-image CLIPScore
    "pytest_t2ibias.report.drivers": {"clip_score"},
}
#: The registry's own files: the definitions (catalog) and the machinery (registry).
REGISTRY_FILES = {"pytest_t2ibias.metrics.catalog", "pytest_t2ibias.metrics.registry"}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _all_names(tree: ast.AST) -> set[int]:
    """The string constants of ``__all__`` (names of Python objects, some spelled like a metric)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            out.update(id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return out


def test_no_metric_id_literal_outside_the_registry() -> None:
    """Every fact about a metric is on its ``MetricDef`` (metrics/catalog.py): code asks the registry
    (``added_by``, ``pairable``, ``headline``, ``distribution``, ``folded``, ``worsening``), never names an id."""
    from pytest_t2ibias.metrics import catalog  # noqa: F401 (registers the built-in metrics)
    from pytest_t2ibias.metrics.registry import METRICS

    ids = set(METRICS)
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if module in REGISTRY_FILES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstring_nodes(tree) | _all_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ids and id(node) not in skip:
                found.setdefault(module, set()).add(str(node.value))
    offenders = {m: sorted(v - ID_LITERALS_ALLOWED.get(m, set())) for m, v in found.items()}
    assert {m: v for m, v in offenders.items() if v} == {}
