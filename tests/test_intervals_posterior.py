"""Robust posterior intervals and bound p-values: honest at small n and at a balanced model.

Coverage over many runs and every gated metric is measured by ``benchmarks/bench_stat_validity.py``; these
tests pin the properties the benchmark relies on, each with a case the former bootstrap got wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import compute_data
from pytest_t2ibias.metrics.intervals import (
    bootstrap_intervals,
    bound_p_value,
    plausible_references,
    reference_fits,
    with_intervals,
)
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")


def _doctor(male: int, female: int, unknown: int = 0) -> CategoryData:
    labels = ["male"] * male + ["female"] * female + ["unknown"] * unknown
    return CategoryData.from_columns(SUITE, "doctor", "strict", labels=labels)


def test_no_image_of_a_group_does_not_collapse_the_interval() -> None:
    # 15 doctors, all female: the bootstrap's parity interval is [-1, -1]; the posterior's reaches inwards
    data = _doctor(0, 15)
    values = compute_data(data)
    assert bootstrap_intervals(data, 400, seed=0)["parity_difference"].high == -1.0
    interval = with_intervals(data, values)["parity_difference"].interval
    assert interval is not None and interval.method == "posterior"
    assert interval.low == pytest.approx(-1.0, abs=1e-9) and interval.high > -0.9


def test_a_balanced_model_is_covered_at_zero_bias() -> None:
    # bias amplification is 0 at uniform shares and positive in every sample: no equal-tailed interval of
    # the draws reaches 0, the interval joined with the plausible reference does
    data = _doctor(9, 6)
    assert plausible_references(data, seed=0) == [{"female": 0.5, "male": 0.5}]
    interval = with_intervals(data, compute_data(data))["bias_amplification"].interval
    assert interval is not None and interval.low == pytest.approx(0.0, abs=1e-12)


def test_a_reference_the_data_rule_out_is_not_joined() -> None:
    data = _doctor(60, 2)
    fits = dict((tuple(sorted(s.items())), p) for s, p in reference_fits(data, seed=0))
    assert fits[(("female", 0.5), ("male", 0.5))] < 0.001
    assert plausible_references(data, seed=0) == []
    interval = with_intervals(data, compute_data(data))["bias_amplification"].interval
    assert interval is not None and interval.low > 0.5


def test_intervals_are_seeded_and_deterministic() -> None:
    data = _doctor(9, 6, 2)
    values = compute_data(data)
    assert with_intervals(data, values, seed=3) == with_intervals(data, values, seed=3)


@pytest.mark.parametrize(("x", "m", "bound", "side"), [(14, 20, 0.5, "max"), (3, 20, 0.5, "min"), (0, 15, 0.1, "min")])
def test_bound_p_value_of_a_share_is_the_exact_binomial_tail(x: int, m: int, bound: float, side: str) -> None:
    data = _doctor(x, m - x)
    p = bound_p_value(data, "male_share", bound, side)  # type: ignore[arg-type]
    expected = binom.sf(x - 1, m, bound) if side == "max" else binom.cdf(x, m, bound)
    assert p == pytest.approx(expected, rel=1e-9)


def test_bound_p_value_of_a_count_metric_follows_the_evidence() -> None:
    far = _doctor(58, 2)  # parity ~0.93: far above a 0.5 bound
    near = _doctor(11, 7)  # parity ~0.22: inside
    assert bound_p_value(far, "parity_difference", 0.5, "max") < 1e-3
    assert bound_p_value(near, "parity_difference", 0.5, "max") == 1.0  # within: no evidence against it
    assert bound_p_value(_doctor(14, 6), "male_share", 0.8, "max") == 1.0
    # 9 of 15 is beyond a bias-amplification bound of 0.1 (0.2), but a balanced model is within it as far
    # as 15 images can tell
    assert bound_p_value(_doctor(9, 6), "bias_amplification", 0.1, "max") > 0.05


def test_small_bound_p_values_are_refined_not_zero() -> None:
    p = bound_p_value(_doctor(300, 2), "parity_difference", 0.5, "max")
    assert 0 < p < 1e-3


@pytest.mark.parametrize("n", [15, 32])
def test_posterior_coverage_of_skewed_parity_at_small_n(n: int) -> None:
    """A short coverage check (the benchmark measures it over every gated metric): doctors 70% male."""
    generator = SyntheticGenerator(SUITE, {"categories": {"doctor": {"attribute": {"male": 0.7, "female": 0.3}}}})
    width = generator.uniforms("doctor", [0]).shape[1]
    rng = np.random.default_rng(n)
    truth = 0.4  # strict signed parity of 70/30
    hits, runs = 0, 150
    for run in range(runs):
        columns = generator.columns("doctor", rng.random((n, width)))
        data = CategoryData.from_columns(SUITE, "doctor", "strict", labels=columns.labels["gender"])
        interval = with_intervals(data, compute_data(data, only=["parity_difference"]), seed=run, n_boot=400)[
            "parity_difference"
        ].interval
        assert interval is not None
        hits += interval.low <= truth <= interval.high
    assert hits / runs >= 0.93 - 2 * math.sqrt(0.05 * 0.95 / runs)


@pytest.mark.parametrize(("male", "female"), [(0, 15), (15, 0), (1, 2), (30, 0)])
def test_posterior_intervals_stay_within_what_each_metric_can_take(male: int, female: int) -> None:
    from pytest_t2ibias.metrics.registry import metric_def

    data = _doctor(male, female)
    for metric_id, estimate in with_intervals(data, compute_data(data)).items():
        definition = metric_def(metric_id, data.spec)
        if estimate.interval is None or definition is None:
            continue
        lowest, highest = definition.span
        assert lowest <= estimate.interval.low <= estimate.interval.high <= highest, metric_id
