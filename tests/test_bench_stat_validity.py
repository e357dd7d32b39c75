"""The statistical-validity benchmark: its vectorised metrics and tests are the package's, and a tiny run completes.

The benchmark (``benchmarks/bench_stat_validity.py``) judges thousands of simulated runs with a vectorised
bootstrap; these tests pin it to the engine (``compute_category``), to ``compare_metric`` and to
``bootstrap_intervals`` on real synthetic records, and run it end to end on a few small runs.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.policy import load_policy
from pytest_t2ibias.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_stat_validity")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def ctx(bench: ModuleType):  # type: ignore[no-untyped-def]
    suite = load_suite("t2i-biasbench")
    return bench.Context.make(suite, load_policy(ROOT / "thresholds" / "t2i-biasbench.yaml", suite), None)


def test_vectorised_metrics_match_the_engine(bench: ModuleType, ctx) -> None:  # type: ignore[no-untyped-def]
    uniform = SyntheticGenerator(ctx.suite)
    skewed = SyntheticGenerator(ctx.suite, bench.SKEWED)  # unknown labels in beauty, rare CAS mentions
    cases = [(uniform, uniform, False), (skewed, skewed, False)]
    summary = bench.check_against_engine(ctx, cases, 60, compare=False, intervals=False, tag="test-metrics")
    # every supported scalar metric of every category, both sides of both cases, plus the group shares
    assert summary.metric_values > 300
    assert summary.max_metric_diff <= 1e-12


def test_vectorised_tests_match_compare_metric_and_intervals(bench: ModuleType, ctx) -> None:  # type: ignore[no-untyped-def]
    uniform = SyntheticGenerator(ctx.suite)
    shifted = uniform.with_probabilities("doctor", {"male": 0.65, "female": 0.35})
    cases = [(uniform, uniform, False), (uniform, shifted, True)]
    summary = bench.check_against_engine(ctx, cases, 60, categories=["doctor", "nature"], tag="test-tests")
    # doctor: composite, bias_amplification, parity_difference (paired bootstrap), male_share (McNemar); nature:
    # composite and cas; and the candidate's interval of each gated metric
    assert set(summary.methods) == {"paired bootstrap", "mcnemar"}
    assert summary.p_values >= 8
    assert summary.max_p_rel_diff <= 1e-6
    assert summary.intervals >= 8
    assert summary.max_interval_diff <= 1e-9


def test_smoke_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--runs", "5", "--n", "40", "--power-n", "40", "--grid", "40,80", "--boot", "100", "--check-runs", "0"]
    report = bench.main(argv)
    out = capsys.readouterr().out
    for row in ("1. false failures", "skewed", "2. power", "3. images/category", "4. within the margin", "elapsed"):
        assert row in out
    assert report["runs"] == 5 and report["boot"] == 100 and report["n"] == 40
    for key in ("false_failure_uniform", "false_failure_skewed", "power", "within_margin"):
        assert report[key]["runs"] == 5
        assert 0.0 <= report[key]["ours"] <= 1.0 and 0.0 <= report[key]["naive"] <= 1.0
    assert set(report["power_curve"]) == {40, 80}
    assert set(report["images_needed"]) == {"ours", "naive"}
    assert report["analytic_images"]["alpha"] == 144  # images_for_power(0.10, 0.10, 0.01), its doctest
    assert math.isfinite(report["elapsed_s"])
