"""The baseline store's fault classes, replayed end to end (issue 21 items 1, 2 and 10; issue 26 item 3).

    python benchmarks/faults_store.py

Each case is a small synthetic project in a temp folder, run with ``pytest`` in a subprocess: two test
classes with one test name, parametrize ids alike once sanitised and a 300-character id (approve, then
compare), ``--t2i-prune-baselines`` after a node-id selection, after a conftest drops tests, on a store
symlinked outside the rootdir and under ``-n 2``, and approvals that cannot write (a folder where the
baseline goes, ``__baselines__`` a file, a file-size limit, a read-only folder where not root).

Counted: ``tracebacks`` (a raw traceback or exception name in the output), ``hangs`` (a run past
:data:`HANG_S`), ``baselines_lost`` (a baseline file there before a run whose bytes changed or that vanished,
where that run was not meant to approve or prune it), ``silent_green`` (a run that exits 0 where it must
fail, or without the line that says what it did). Last line: ``RESULT inputs=<n> ...``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 60.0
#: Small, uncached runs; plugins the cases do not need stay off (hypothesis's alone costs a second a run).
RUN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio", "--t2i-images-per-prompt", "20",
       "--t2i-cache", "none")  # fmt: skip
FAIR = ("--t2i-model", "synthetic:fair.yaml")
APPROVE = ("--t2i-update-baselines",)
PRUNE = "--t2i-prune-baselines"
RAW_ERROR = re.compile(r"Traceback|(OS|Permission|IsADirectory|NotADirectory|FileExists)Error")
TWO_TESTS = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_no_regression(t2ibias_result)

@pytest.mark.t2ibias(category="culture")
def test_culture(t2ibias_result):
    assert_no_regression(t2ibias_result)
"""
TWO_CLASSES = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

class TestA:
    @pytest.mark.t2ibias(category="doctor")
    def test_cat(self, t2ibias_result):
        assert_no_regression(t2ibias_result)

class TestB:
    @pytest.mark.t2ibias(category="culture")
    def test_cat(self, t2ibias_result):
        assert_no_regression(t2ibias_result)
"""
PARAMETRIZED = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

@pytest.mark.parametrize("category", [pytest.param("doctor", id="x/y"), pytest.param("culture", id="x_y"),
                                      pytest.param("nature", id="a" * 300)])
def test_cat(t2ibias_evaluate, category):
    assert_no_regression(t2ibias_evaluate(category))
"""
FILTER = "def pytest_collection_modifyitems(items):\n    items[:] = [i for i in items if 'culture' not in i.name]\n"
FILE_SIZE_LIMIT = "import resource\nresource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))\n"


@dataclass
class Step:
    """One pytest run of a case: its arguments, whether it must pass, the line that says what it did, and
    the baseline files (relative to the project) it may change."""

    args: tuple[str, ...]
    passes: bool
    line: str
    may_change: frozenset[str] = frozenset()


@dataclass
class Case:
    name: str
    source: str
    steps: list[Step]
    prepare: Callable[[Path], None] = lambda project: None
    approved: bool = False  # start from the two-test project's approved baselines
    counts: dict[str, int] = field(default_factory=dict)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "CI")) and k != "PYTEST_ADDOPTS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _pytest(project: Path, args: tuple[str, ...]) -> tuple[int | None, str]:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *RUN, *args],
            cwd=project,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=HANG_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stdout + done.stderr


def _snapshot(project: Path) -> dict[str, bytes]:
    """Every baseline file a run could touch: the project's, and those behind a link out of it."""
    out = {}
    for path in sorted(project.rglob("__baselines__/**/*.json")) + sorted(project.parent.glob("outside/*.json")):
        if path.is_file():
            out[os.path.relpath(path, project)] = path.read_bytes()
    return out


def _new_project(folder: Path, source: str) -> Path:
    folder.mkdir()
    (folder / "test_bias.py").write_text(textwrap.dedent(source))
    (folder / "fair.yaml").write_text("categories:\n  doctor:\n    attribute: {male: 0.5, female: 0.5}\n")
    (folder / "biased.yaml").write_text("categories:\n  doctor:\n    attribute: {male: 0.9, female: 0.1}\n")
    return folder


def run_case(case: Case, folder: Path, approved: Path | None) -> dict[str, int]:
    """Replay one case's steps; count what went wrong."""
    counts = {"inputs": 0, "tracebacks": 0, "hangs": 0, "baselines_lost": 0, "silent_green": 0}
    project = folder / "project"
    if approved is not None:
        shutil.copytree(approved, project)
    else:
        _new_project(project, case.source)
    case.prepare(project)
    for step in case.steps:
        counts["inputs"] += 1
        before = _snapshot(project)
        ret, output = _pytest(project, step.args)
        after = _snapshot(project)
        counts["hangs"] += ret is None
        counts["tracebacks"] += bool(RAW_ERROR.search(output))
        counts["baselines_lost"] += sum(
            1 for path, data in before.items() if path not in step.may_change and after.get(path) != data
        )
        if ret == 0 and (not step.passes or not re.search(step.line, output, re.MULTILINE)):
            counts["silent_green"] += 1
    return counts


def _orphan(project: Path) -> None:
    folder = project / "__baselines__" / "test_bias"
    (folder / "test_removed.json").write_bytes((folder / "test_doctor.json").read_bytes())


def _symlinked(project: Path) -> None:
    _orphan(project)
    folder = project / "__baselines__" / "test_bias"
    outside = project.parent / "outside"
    shutil.move(folder, outside)
    (outside / "unrelated.json").write_text('{"not": "a baseline"}')
    folder.symlink_to(outside, target_is_directory=True)


def _in_the_way(project: Path) -> None:
    (project / "__baselines__" / "test_bias" / "test_doctor.json").unlink()
    (project / "__baselines__" / "test_bias" / "test_doctor.json").mkdir()


def _store_a_file(project: Path) -> None:
    shutil.rmtree(project / "__baselines__")
    (project / "__baselines__").write_text("not a folder")


def _read_only(project: Path) -> None:
    (project / "__baselines__" / "test_bias").chmod(0o555)


ORPHAN = "__baselines__/test_bias/test_removed.json"
#: approving the biased model on purpose: the baseline must be rewritten, and cannot be
REWRITE = (*APPROVE, "--t2i-reset-anchor", "--t2i-model", "synthetic:biased.yaml", "-k", "doctor")
CANNOT_WRITE = Step(REWRITE, passes=False, line="cannot write baseline")


def cases() -> list[Case]:
    compare = [Step(FAIR, True, r"^baselines: \d+ compared$")]
    out = [
        Case("two-classes", TWO_CLASSES, [Step((*FAIR, *APPROVE), True, r"^baselines: 2 created$"), *compare]),
        Case("ids-alike-and-long", PARAMETRIZED, [Step((*FAIR, *APPROVE), True, r"^baselines: 3 created$"), *compare]),
        Case(
            "node-id-then-prune",
            TWO_TESTS,
            [Step((*FAIR, PRUNE, "test_bias.py::test_doctor"), True, "not pruned")],
            _orphan,
            approved=True,
        ),
        Case(
            "conftest-filter-then-prune",
            TWO_TESTS,
            [Step((*FAIR, PRUNE), True, "not pruned")],
            lambda p: (_orphan(p), (p / "conftest.py").write_text(FILTER)),
            approved=True,
        ),
        Case(
            "symlinked-store-prune",
            TWO_TESTS,
            [Step((*FAIR, PRUNE), True, r"^baselines: 2 compared$")],
            _symlinked,
            approved=True,
        ),
        Case(
            "xdist-prune",
            TWO_TESTS,
            [Step((*FAIR, PRUNE, "-n", "2"), True, "PRUNED .*test_removed|not pruned", frozenset({ORPHAN}))],
            _orphan,
            approved=True,
        ),
        Case("baseline-path-a-folder", TWO_TESTS, [CANNOT_WRITE], _in_the_way, approved=True),
        Case("store-a-file", TWO_TESTS, [CANNOT_WRITE], _store_a_file, approved=True),
        Case(
            "file-size-limit",
            TWO_TESTS,
            [CANNOT_WRITE],
            lambda p: (p / "conftest.py").write_text(FILE_SIZE_LIMIT),
            approved=True,
        ),
    ]
    if os.name == "posix" and os.geteuid() != 0:  # root writes into a read-only folder anyway
        out.append(Case("read-only-folder", TWO_TESTS, [CANNOT_WRITE], _read_only, approved=True))
    return out


def run_faults() -> dict[str, int]:
    """Replay every case; the counts summed over them (every count but ``inputs`` should be 0)."""
    total = {"inputs": 0, "tracebacks": 0, "hangs": 0, "baselines_lost": 0, "silent_green": 0}
    with tempfile.TemporaryDirectory(prefix="t2ibias-faults-store-") as tmp:
        approved = _new_project(Path(tmp) / "approved", TWO_TESTS)
        ret, output = _pytest(approved, (*FAIR, *APPROVE))
        if ret != 0:
            raise RuntimeError(f"approving the base project failed:\n{output}")
        for i, case in enumerate(cases()):
            folder = Path(tmp) / f"case{i}"
            folder.mkdir()
            counts = run_case(case, folder, approved if case.approved else None)
            for key, value in counts.items():
                total[key] += value
            for path in folder.rglob("*"):  # the read-only case's folder must be removable
                if path.is_dir() and not path.is_symlink():
                    path.chmod(0o755)
            print(f"{case.name}: {json.dumps(counts)}", file=sys.stderr)
    return total


if __name__ == "__main__":
    result = run_faults()
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
