"""The package's shape: no import circles, stages import only leftwards, the judge knows no pytest.

Read from the source (``ast``): every import that runs (module level or inside a function), leaving out
``if TYPE_CHECKING:`` blocks, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_t2ibias"
#: The re-export modules of the unreleased 0.x layout, deleted (issue 25): each name has one home.
REMOVED = {
    "pytest_t2ibias.atomic",  # -> pytest_t2ibias._io
    "pytest_t2ibias.baseline",  # -> pytest_t2ibias.judge.baseline
    "pytest_t2ibias.compare",  # -> pytest_t2ibias.judge.compare
    "pytest_t2ibias.evaluate",  # -> pytest_t2ibias.pipeline
    "pytest_t2ibias.policy",  # -> pytest_t2ibias.judge.policy
    "pytest_t2ibias.result",  # -> pytest_t2ibias.metrics.result
    "pytest_t2ibias.stats",  # -> pytest_t2ibias.judge.stats
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


@pytest.mark.parametrize("old", sorted(REMOVED))
def test_the_removed_shims_are_gone(old: str) -> None:
    from importlib.machinery import PathFinder

    import pytest_t2ibias

    assert not (PACKAGE / f"{old.rsplit('.', 1)[1]}.py").exists()
    # the package's own path only, as an installed package is searched: an editable install's finder may
    # still map the name to another checkout
    assert PathFinder.find_spec(old, list(pytest_t2ibias.__path__)) is None


def test_nothing_imports_the_removed_shims() -> None:
    root = PACKAGE.parent
    users = {
        str(path.relative_to(root)): sorted(_runtime_imports(path) & REMOVED)
        for folder in ("pytest_t2ibias", "tests", "example_tests", "benchmarks")
        for path in (root / folder).rglob("*.py")
        if _runtime_imports(path) & REMOVED
    }
    assert users == {}


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


#: Exception classes that may live outside ``errors.py``: private to one module, raised and caught there,
#: never seen by a user.
INTERNAL_EXCEPTIONS = {
    # an OSError (errno, path) that read_regular_bytes raises and its callers catch as OSError, then
    # report in their own user error
    "pytest_t2ibias._files.NotRegularFileError",
    # load_yaml's refusal of one document, turned into the caller's error with the source named
    "pytest_t2ibias._io._Rejected",
    # a repeated JSON key, turned into CorruptBaselineError by parse_baseline
    "pytest_t2ibias.judge.baseline._DuplicateKey",
}


def _exception_classes() -> dict[str, str]:
    """Every class of the package that subclasses ``BaseException`` (by its bases' names), as
    ``{qualified name: module}``; a base is a builtin exception or a class found here."""
    import builtins

    classes = [
        (_module_name(p), node.name, {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases})
        for p in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    known = {
        n
        for n in dir(builtins)
        if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
    }
    found: dict[str, str] = {}
    while True:
        more = {f"{m}.{name}": m for m, name, bases in classes if bases & known and f"{m}.{name}" not in found}
        if not more:
            return found
        found.update(more)
        known |= {q.rsplit(".", 1)[1] for q in more}


def test_every_exception_class_is_defined_in_errors() -> None:
    found = _exception_classes()
    assert "pytest_t2ibias.errors.LockTimeoutError" in found  # the scan sees subclasses of our own classes
    assert "pytest_t2ibias.errors.T2IBiasWarning" in found
    outside = {name for name, module in found.items() if module != "pytest_t2ibias.errors"}
    assert outside == INTERNAL_EXCEPTIONS


# -- the public API (pytest_t2ibias.__all__) -------------------------------------------------------------

DOCS = PACKAGE.parent / "docs"


def _code_in_docs() -> str:
    """The inline code spans and fenced code blocks of docs/*.md, joined."""
    import re

    parts: list[str] = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
        prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        parts += fenced + re.findall(r"`([^`\n]+)`", prose)
    return "\n".join(parts)


def test_every_public_name_resolves_and_is_documented() -> None:
    import re

    import pytest_t2ibias

    assert len(pytest_t2ibias.__all__) == len(set(pytest_t2ibias.__all__))
    for name in pytest_t2ibias.__all__:
        assert getattr(pytest_t2ibias, name) is not None, name
    code = _code_in_docs()
    undocumented = [n for n in pytest_t2ibias.__all__ if not re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", code)]
    assert undocumented == [], "public names no docs/*.md shows as code (add a line to docs/api.md)"
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    assert [n for n in pytest_t2ibias.__all__ if f"`{n}`" not in api] == []


def test_the_public_api_covers_the_errors_and_the_assertions() -> None:
    import pytest_t2ibias
    import pytest_t2ibias.errors

    assert set(pytest_t2ibias.errors.__all__) <= set(pytest_t2ibias.__all__)
    helpers = {
        node.name
        for node in ast.parse((PACKAGE / "assertions.py").read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("assert_")
    }
    assert helpers and helpers <= set(pytest_t2ibias.__all__)


def test_the_type_checking_imports_of_the_package_are_its_exports() -> None:
    """``__init__``'s ``if TYPE_CHECKING:`` imports (what mypy sees) name the same modules as the lazy
    loader's table (what runs)."""
    import pytest_t2ibias

    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    typed = {
        alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert typed == pytest_t2ibias._EXPORTS
    assert sorted(typed) == pytest_t2ibias.__all__


def test_importing_the_package_imports_none_of_its_modules() -> None:
    """pytest imports the package in every run (the plugin's entry point): the names load on first use."""
    import subprocess
    import sys

    code = "import sys, pytest_t2ibias; print(sorted(m for m in sys.modules if m.startswith('pytest_t2ibias.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
