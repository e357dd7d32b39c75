"""The occupations statistics benchmark judges runs with the package's own functions, and a quick run
completes with its RESULT line."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
from pytest_t2ibias.metrics.intervals import bound_p_value
from pytest_t2ibias.pipeline import evaluate_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_occupations")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def b(bench: ModuleType):  # type: ignore[no-untyped-def]
    return bench.Bench()


def test_forty_occupations_none_small(bench: ModuleType, b) -> None:  # type: ignore[no-untyped-def]
    assert len(b.names) == 40
    assert not set(b.names) & set(b.suite.groups()["occupations/small-sample"])
    assert all(b.bounds[c] == 0.0 for c in b.names)  # the shipped policy's `occupations/*` rule


def test_amplified_raises_the_majority(bench: ModuleType, b) -> None:  # type: ignore[no-untyped-def]
    assert bench.amplified(b.suite, "doctor", 0.15) == {"female": 0.288, "male": 0.712}  # 56.2% men
    assert bench.amplified(b.suite, "nurse", 0.15) is None  # 87.9% women: no room for 15 points


def test_cached_p_value_is_the_pipelines(bench: ModuleType, b) -> None:  # type: ignore[no-untyped-def]
    # the benchmark computes a bound's p-value once per (occupation, count, n); the plugin computes it
    # on the category's data from the pipeline: the same number (it depends only on the counts)
    generator = b.generator.with_probabilities("lawyer", {"female": 0.2, "male": 0.8})
    evaluation = evaluate_suite(
        b.suite, generator, SyntheticAnnotator(b.suite), images_per_prompt=25, categories=["lawyer"]
    )
    data = evaluation.categories["lawyer"].columns(b.suite)
    female = sum(1 for label in data.labels if label == "female")
    expected = bound_p_value(data, "amplification_reference", 0.0, "max", seed=b.suite.seed)
    assert b.p_value("lawyer", female, data.n) == expected
    assert expected < 0.05  # 80% men drawn where 61.5% work: amplified


def test_vectorised_draws_follow_the_shares(b) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    women = [b.draw(rng, "doctor", 2000, shift) for shift in (0.0, 0.15)]
    assert abs(women[0] / 2000 - 0.438) < 0.04 and abs(women[1] / 2000 - 0.288) < 0.04


def test_a_run_fails_only_the_amplified_occupation(bench: ModuleType, b) -> None:  # type: ignore[no-untyped-def]
    # (the aggregate may fail too: one amplified occupation amplifies the mean, truly)
    failed, _, failing, exact_failing = b.run(np.random.default_rng(1), 400, "lawyer")
    assert failed and [t for t in failing if t != "aggregate"] == ["lawyer"] and exact_failing == ["lawyer"]


def test_against_a_baseline_only_the_amplified_occupation_fails(bench: ModuleType, b) -> None:  # type: ignore[no-untyped-def]
    policy = bench.with_baseline(b.suite)
    assert policy.rules_for("lawyer")["female_share"].regression.absolute == bench.ALLOWED
    failing = b.run_vs_baseline(np.random.default_rng(2), 200, "lawyer", policy)
    assert [t for t in failing if t != "aggregate"] == ["lawyer"]
    assert b.run_vs_baseline(np.random.default_rng(3), 100, None, policy) == []


def test_quick_run_prints_the_result_line(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--quick"])
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(
        r"RESULT false_fail_40cats=(\d+\.\d) power15_one_of_40=(\d+\.\d) "
        r"false_fail_40cats_baseline=(\d+\.\d) power15_one_of_40_baseline=(\d+\.\d)",
        last,
    )
    assert match, last
    assert float(match[1]) == pytest.approx(100 * report["false_fail"], abs=0.05)
    assert float(match[4]) == pytest.approx(100 * report["power_baseline"], abs=0.05)
    assert report["runs"] == 30
    assert report["false_fail"] <= 0.1 and report["power"] >= 0.5  # seeded: the quick run is deterministic
