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
    # 70 % male: parity far from 0 on both sides, so the fold at parity is out of reach
    rng = np.random.default_rng(0)
    base, cand = (_doctor(list(rng.choice(["male", "female"], 400, p=[0.7, 0.3]))) for _ in range(2))
    paired = compare_paired(base, cand, "parity_difference", 0.0)
    assert paired.se is not None and paired.upper is not None
    value_b = compare_paired(base, base, "parity_difference", 0.0)
    assert value_b.p_value == 1.0
    delta = _parity(cand) - _parity(base)
    worse = abs(_parity(cand)) - abs(_parity(base))  # strict parity: worse is further from zero
    assert paired.upper == pytest.approx(worse + 1.6448536269514722 * paired.se, rel=1e-9)
    unpaired = compare_unpaired(base, cand, "parity_difference", delta)
    assert unpaired.upper == pytest.approx(worse + 1.6448536269514722 * unpaired.se, rel=1e-9)


def test_a_fold_at_parity_does_not_hide_a_change() -> None:
    # 15 images: baseline parity -0.2, candidate +0.2 after 3 images flipped female -> male. Both are 0.2
    # from parity (worsening 0), but neither run can tell on which side of parity the model is, so the
    # bound is the size of the change itself (0.4 and more) or the candidate's own 95 % bound of its
    # distance from parity, whichever is smaller. Unpaired, without the fold, the bound would be 0.0
    base = _doctor(["male"] * 6 + ["female"] * 9)
    cand = _doctor(["male"] * 6 + ["male"] * 3 + ["female"] * 6)
    assert _parity(base) == pytest.approx(-0.2) and _parity(cand) == pytest.approx(0.2)
    for metric in ("parity_difference", "bias_amplification"):  # two groups: the same fold, the same size
        paired = compare_paired(base, cand, metric, 0.4)
        unpaired = compare_unpaired(base, cand, metric, 0.4)
        assert paired.upper is not None and paired.upper > 0.4
        assert unpaired.upper is not None and unpaired.upper > 0.4


def test_a_balanced_candidate_of_independent_images_can_pass() -> None:
    # 400 images each, the pairs unrelated (a retrain): the change in parity is measured with both runs'
    # noise (0.05 + 1.645 x 0.1 = 0.21 > 1.5 x 0.10), but the candidate's own 95 % bound of its distance
    # from parity is 0.10, and the worsening cannot exceed it: a pass is possible
    base = _doctor(["male"] * 190 + ["female"] * 210)
    cand = _doctor(["female"] * 200 + ["male"] * 200)
    for metric in ("parity_difference", "bias_amplification"):
        for comparison in (compare_paired(base, cand, metric, 0.05), compare_unpaired(base, cand, metric, 0.05)):
            assert comparison.upper is not None and 0.05 < comparison.upper < 0.15


def test_a_fold_out_of_reach_keeps_the_worsening() -> None:
    # 200 images at 80 % male improved to 70 %: parity far from 0 on both sides, so an improvement of
    # 0.2 bounds the worsening below 0 (a pass), though the change itself is 0.2
    base = _doctor(["male"] * 160 + ["female"] * 40)
    cand = _doctor(["male"] * 140 + ["female"] * 20 + ["female"] * 40)
    for metric in ("parity_difference", "bias_amplification"):
        comparison = compare_paired(base, cand, metric, -0.2)
        assert comparison.upper is not None and comparison.upper < 0


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
