"""A pass needs evidence: the upper bound of the worsening each comparison carries.

The rate at which a real 15-point regression passes at n = 15, over thousands of runs, is measured by
``benchmarks/bench_stat_validity.py``; these tests pin the bound's parts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta

from pytest_t2ibias.judge.compare import compare_paired, compare_unpaired
from pytest_t2ibias.judge.stats import clopper_pearson_upper
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")


def _doctor(labels: list[str]) -> CategoryData:
    return CategoryData.from_columns(SUITE, "doctor", "strict", labels=labels)


@pytest.mark.parametrize(("x", "n"), [(0, 1), (0, 15), (1, 15), (7, 15), (14, 15), (30, 200), (0, 1000)])
def test_clopper_pearson_upper_is_the_beta_quantile(x: int, n: int) -> None:
    assert clopper_pearson_upper(x, n) == pytest.approx(beta.ppf(0.95, x + 1, n - x), abs=1e-12)
    assert clopper_pearson_upper(n, n) == 1.0


def test_fifteen_agreeing_pairs_cannot_rule_out_a_fifteen_point_change() -> None:
    # no pair differs, but 15 pairs cannot show that fewer than 18 % of images changed: 3 more images may
    # have, each moved the worst way
    same = _doctor(["male"] * 8 + ["female"] * 7)
    share = compare_paired(same, same, "male_share", 0.0)
    assert share.method == "mcnemar" and share.se == 0.0
    assert share.upper == pytest.approx(math.ceil(15 * clopper_pearson_upper(0, 15)) / 15)
    assert share.upper > 0.15  # above 1.5 x the allowed 0.10: inconclusive, not pass
    parity = compare_paired(same, same, "parity_difference", 0.0)
    assert parity.upper == pytest.approx(2 * share.upper)  # one image moved changes the parity twice as much


def test_at_large_n_the_normal_term_decides() -> None:
    rng = np.random.default_rng(0)
    base, cand = (_doctor(list(rng.choice(["male", "female"], 400))) for _ in range(2))
    paired = compare_paired(base, cand, "parity_difference", 0.0)
    assert paired.se is not None and paired.upper is not None
    value_b = compare_paired(base, base, "parity_difference", 0.0)
    assert value_b.p_value == 1.0
    delta = _parity(cand) - _parity(base)
    worse = abs(_parity(cand)) - abs(_parity(base))  # strict parity: worse is further from zero
    assert paired.upper == pytest.approx(worse + 1.6448536269514722 * paired.se, rel=1e-9)
    unpaired = compare_unpaired(base, cand, "parity_difference", delta)
    assert unpaired.upper == pytest.approx(worse + 1.6448536269514722 * unpaired.se, rel=1e-9)


def test_a_worse_candidate_has_a_higher_bound() -> None:
    base = _doctor(["male"] * 50 + ["female"] * 50)
    worse = _doctor(["male"] * 50 + ["male"] * 20 + ["female"] * 30)  # 20 pairs flipped female -> male
    better = compare_paired(base, base, "male_share", 0.0)
    flipped = compare_paired(base, worse, "male_share", 0.2)
    assert flipped.upper is not None and better.upper is not None
    assert flipped.upper > 0.2 > better.upper


def _parity(data: CategoryData) -> float:
    from pytest_t2ibias.metrics.engine import compute_data

    value = compute_data(data, only=["parity_difference"]).metrics["parity_difference"]
    assert isinstance(value, float)
    return value
