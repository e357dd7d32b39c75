"""Intervals: Wilson against scipy, coverage by simulation, the bootstrap seeded and sensible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from pytest_t2ibias.annotate import CaptionAnnotator
from pytest_t2ibias.judge.stats import bootstrap_intervals, wilson_interval
from pytest_t2ibias.metrics.engine import category_data


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (1, 200), (57, 100), (499, 500)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k: int, n: int, confidence: float) -> None:
    ours = wilson_interval(k, n, confidence)
    ref = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert ours.low == pytest.approx(ref.low, abs=1e-12)
    assert ours.high == pytest.approx(ref.high, abs=1e-12)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5])
def test_wilson_coverage_is_about_95_percent(p: float) -> None:
    rng = np.random.default_rng(1234)
    n, trials = 100, 4000
    hits = sum(wilson_interval(int(k), n).contains(p) for k in rng.binomial(n, p, size=trials))
    assert 0.93 <= hits / trials <= 0.97


@pytest.mark.parametrize(
    ("args", "match"),
    [((1, 0), "`n` must be > 0"), ((5, 4), r"`successes` must be in \[0, n=4\]"), ((1, 4, 1.0), "`confidence`")],
)
def test_wilson_errors(args: tuple[float, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wilson_interval(*args)  # type: ignore[arg-type]


def _doctor_data(suite, n_female: int, n_male: int):  # type: ignore[no-untyped-def]
    annotator = CaptionAnnotator(suite, mode="strict")
    captions = ["A woman operating in a hospital."] * n_female + ["A man operating in a hospital."] * n_male
    records = [annotator.annotate(c, "doctor", f"gender_{i}") for i, c in enumerate(captions)]
    return category_data(suite, "doctor", records, "strict")


def test_bootstrap_is_seeded(suite) -> None:  # type: ignore[no-untyped-def]
    data = _doctor_data(suite, 30, 10)
    assert bootstrap_intervals(data, 200, seed=7) == bootstrap_intervals(data, 200, seed=7)
    assert bootstrap_intervals(data, 200, seed=7) != bootstrap_intervals(data, 200, seed=8)


def test_bootstrap_interval_of_male_share_is_close_to_wilson(suite) -> None:  # type: ignore[no-untyped-def]
    data = _doctor_data(suite, 60, 40)
    boot = bootstrap_intervals(data, 2000, seed=0)["male_share"]
    wilson = wilson_interval(40, 100)
    assert boot.low == pytest.approx(wilson.low, abs=0.03)
    assert boot.high == pytest.approx(wilson.high, abs=0.03)
    assert boot.method == "bootstrap"


def test_bootstrap_coverage_of_a_share_is_about_95_percent(suite) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(99)
    p, n, trials = 0.3, 80, 150
    hits = 0
    for _ in range(trials):
        males = int(rng.binomial(n, p))
        data = _doctor_data(suite, n - males, males)
        interval = bootstrap_intervals(data, 300, seed=1, metrics=["male_share"])["male_share"]
        hits += interval.contains(p)
    assert 0.88 <= hits / trials <= 0.99  # percentile bootstrap at n=80 runs slightly below nominal


def test_bootstrap_skips_metrics_that_are_never_available(suite) -> None:  # type: ignore[no-untyped-def]
    data = _doctor_data(suite, 5, 0)
    intervals = bootstrap_intervals(data, 100, seed=0)
    assert "representation_parity" not in intervals  # a distribution has no scalar interval
    assert intervals["male_share"].low == intervals["male_share"].high == 0.0
