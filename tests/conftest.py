from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest_plugins = ["pytester"]

#: The paper authors' captions and published results, laid beside the repository (never copied in).
REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "t2ibiasbench"


#: Variables of the outer run (a CI job, an xdist worker) that change what an inner pytester run does.
OUTER_RUN_ENVIRONMENT = (
    "CI",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "GITHUB_STEP_SUMMARY",  # the inner runs must not append to the outer CI job's summary
)


@pytest.fixture(autouse=True)
def _clean_inner_run_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """An inner pytester run must not see the outer run's environment.

    CI sets CI, and the plugin then refuses to approve baselines: every test that approves baselines in an
    inner run would fail in CI only (as it did once). Tests that read CI themselves (the browser test) do not
    use pytester and keep it.
    """
    if "pytester" in request.fixturenames:
        for name in OUTER_RUN_ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def stat_bench() -> ModuleType:
    """benchmarks/bench_stat_validity.py as a module (its judgement of simulated runs is tested)."""
    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        return importlib.import_module("bench_stat_validity")
    finally:
        sys.path.remove(benchmarks)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "captions").is_dir() or not (REFERENCE_DIR / "metrics").is_dir():
        pytest.skip(f"T2I-BiasBench reference data not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def suite():  # type: ignore[no-untyped-def]
    from pytest_t2ibias.suites import load_suite

    return load_suite("t2i-biasbench")
