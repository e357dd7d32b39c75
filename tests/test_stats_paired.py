"""Paired tests and multiple-comparison control, each against an independent reference.

McNemar against scipy's exact binomial test, Holm against the step-down procedure written out, BH against
scipy, the paired bootstrap by coverage and null simulations, and the power formula against its closed form
and against the exact test it sizes.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import binomtest, false_discovery_control, norm

from pytest_t2ibias.judge.stats import (
    Interval,
    benjamini_hochberg,
    holm,
    images_for_power,
    mcnemar_exact,
    paired_bootstrap,
    unpaired_z,
)

# -- McNemar ------------------------------------------------------------------------------------------------


def _paired_sample(seed: int, n: int, p_base: float, p_flip: float) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Baseline ~ Bernoulli(p_base); the candidate copies it and flips each outcome with probability p_flip."""
    rng = np.random.default_rng(seed)
    baseline = rng.random(n) < p_base
    candidate = baseline ^ (rng.random(n) < p_flip)
    return baseline, candidate


@pytest.mark.parametrize(
    ("seed", "n", "p_base", "p_flip"),
    [(seed, n, p_base, p_flip) for seed, (n, p_base, p_flip) in enumerate(
        [(10, 0.5, 0.3), (40, 0.2, 0.1), (100, 0.5, 0.05), (250, 0.1, 0.2), (600, 0.7, 0.02), (2000, 0.4, 0.3)] * 5
    )],
)  # fmt: skip
class TestMcNemarAgainstScipy:
    def test_p_value_is_the_exact_binomial_test_of_discordant_pairs(
        self, seed: int, n: int, p_base: float, p_flip: float
    ) -> None:
        baseline, candidate = _paired_sample(seed, n, p_base, p_flip)
        p, b, c = mcnemar_exact(baseline.tolist(), candidate.tolist())
        if b + c == 0:
            assert p == 1.0
        else:
            assert p == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)

    def test_discordant_counts(self, seed: int, n: int, p_base: float, p_flip: float) -> None:
        baseline, candidate = _paired_sample(seed, n, p_base, p_flip)
        _, b, c = mcnemar_exact(baseline, candidate)
        assert b == sum(1 for x, y in zip(baseline, candidate, strict=True) if x and not y)
        assert c == sum(1 for x, y in zip(baseline, candidate, strict=True) if y and not x)

    def test_symmetric_in_the_direction_of_change(self, seed: int, n: int, p_base: float, p_flip: float) -> None:
        baseline, candidate = _paired_sample(seed, n, p_base, p_flip)
        p, b, c = mcnemar_exact(baseline, candidate)
        p_swapped, b_swapped, c_swapped = mcnemar_exact(candidate, baseline)
        assert (b_swapped, c_swapped) == (c, b)
        assert p_swapped == pytest.approx(p, rel=1e-12)


def _pairs(b: int, c: int, concordant: int = 0) -> tuple[list[bool], list[bool]]:
    """``b`` pairs (True, False), ``c`` pairs (False, True), then concordant pairs alternating both ways."""
    baseline = [True] * b + [False] * c + [i % 2 == 0 for i in range(concordant)]
    candidate = [False] * b + [True] * c + [i % 2 == 0 for i in range(concordant)]
    return baseline, candidate


def test_mcnemar_no_discordant_pairs_gives_p_one() -> None:
    assert mcnemar_exact(*_pairs(0, 0, concordant=50)) == (1.0, 0, 0)


def test_mcnemar_empty_samples_give_p_one() -> None:
    assert mcnemar_exact([], []) == (1.0, 0, 0)


@pytest.mark.parametrize(("b", "c"), [(0, 1), (1, 0), (0, 5), (12, 0), (0, 60)])
def test_mcnemar_all_discordant_one_way(b: int, c: int) -> None:
    p, got_b, got_c = mcnemar_exact(*_pairs(b, c, concordant=7))
    assert (got_b, got_c) == (b, c)
    assert p == pytest.approx(min(1.0, 2 * 0.5 ** (b + c)), rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(5, 5), (5, 6), (40, 41)])
def test_mcnemar_balanced_discordance_gives_p_one(b: int, c: int) -> None:
    assert mcnemar_exact(*_pairs(b, c))[0] == pytest.approx(1.0, abs=1e-12)  # the summed tail rounds


def test_mcnemar_large_counts_do_not_overflow() -> None:
    p, b, c = mcnemar_exact(*_pairs(3000, 2500, concordant=1000))
    assert (b, c) == (3000, 2500)
    assert 0 < p < 1e-9
    assert p == pytest.approx(binomtest(3000, 5500, 0.5).pvalue, rel=1e-8)


def test_mcnemar_very_large_counts_underflow_to_zero_not_nan() -> None:
    p, _, _ = mcnemar_exact(*_pairs(30000, 10000))
    assert p == 0.0 or 0 < p < 1e-300


def test_mcnemar_docstring_example_by_hand() -> None:
    # b = 3, c = 0: 2 * P(Bin(3, 1/2) <= 0) = 2 / 8
    p, b, c = mcnemar_exact([1, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1])
    assert (b, c) == (3, 0)
    assert p == pytest.approx(0.25, rel=1e-12)


@pytest.mark.parametrize(
    ("baseline", "candidate"),
    [([True, False], [True]), ([[True, False]], [[True, False]])],
    ids=["unequal_length", "two_dimensional"],
)
def test_mcnemar_shape_error(baseline: list[object], candidate: list[object]) -> None:
    with pytest.raises(ValueError, match="`baseline` and `candidate` must be 1-d of equal length"):
        mcnemar_exact(baseline, candidate)  # type: ignore[arg-type]


# -- Holm and Benjamini-Hochberg -----------------------------------------------------------------------------


def _holm_by_step_down(p_values: list[float], alpha: float) -> set[int]:
    """Holm (1979) as a decision rule: reject in increasing order while p_(k) <= alpha / (m - k + 1)."""
    m = len(p_values)
    rejected: set[int] = set()
    for k, i in enumerate(sorted(range(m), key=lambda i: p_values[i]), start=1):
        if p_values[i] > alpha / (m - k + 1):
            break
        rejected.add(i)
    return rejected


def _holm_reference(p_values: list[float]) -> list[float]:
    """Adjusted p-values written out: p~_(k) = max_{j <= k} min(1, (m - j + 1) p_(j))."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [0.0] * m
    for k, i in enumerate(order):
        out[i] = max(min(1.0, (m - j) * p_values[order[j]]) for j in range(k + 1))
    return out


def _random_p_values(seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = np.concatenate([rng.random(m), rng.random(m) * 0.01])  # a mix of nulls and small p-values
    p[rng.random(2 * m) < 0.1] = 1.0
    if m > 2:
        p[1] = p[0]  # a tie
    return [float(x) for x in rng.permutation(p)]


@pytest.mark.parametrize("seed", range(25))
class TestHolm:
    def test_matches_the_written_out_formula(self, seed: int) -> None:
        p = _random_p_values(seed)
        assert holm(p) == pytest.approx(_holm_reference(p), rel=1e-12)

    @pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.2])
    def test_rejects_what_the_step_down_procedure_rejects(self, seed: int, alpha: float) -> None:
        p = _random_p_values(seed)
        assert {i for i, q in enumerate(holm(p)) if q <= alpha} == _holm_by_step_down(p, alpha)

    def test_monotone_capped_and_between_raw_and_bonferroni(self, seed: int) -> None:
        p = _random_p_values(seed)
        adjusted = holm(p)
        for raw, adj in zip(p, adjusted, strict=True):
            assert raw <= adj <= min(1.0, len(p) * raw) * (1 + 1e-12)
        ranked = [adjusted[i] for i in sorted(range(len(p)), key=lambda i: p[i])]
        assert ranked == sorted(ranked)


def test_holm_wikipedia_example() -> None:
    # en.wikipedia.org/wiki/Holm-Bonferroni_method, "Example": four hypotheses at alpha = 0.05 with
    # p = 0.01, 0.04, 0.03, 0.005; H1 and H4 are rejected, H2 and H3 are not.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)
    assert [q <= 0.05 for q in adjusted] == [True, False, False, True]


def test_holm_rejects_both_of_two_where_bonferroni_rejects_one() -> None:
    # p = 0.004, 0.006 at alpha = 0.01: 2 * 0.004 = 0.008 <= 0.01, then 1 * 0.006 <= 0.01 (Bonferroni: 0.012)
    assert holm([0.006, 0.004]) == pytest.approx([0.008, 0.008], rel=1e-12)


def test_holm_caps_at_one() -> None:
    assert holm([0.3, 0.5, 0.9]) == pytest.approx([0.9, 1.0, 1.0], rel=1e-12)
    assert max(holm([0.3, 0.5, 0.9])) == 1.0


def test_holm_single_p_value_is_unchanged() -> None:
    assert holm([0.037]) == [0.037]


def test_holm_empty_family() -> None:
    assert holm([]) == []


@pytest.mark.parametrize("seed", range(25))
class TestBenjaminiHochberg:
    def test_matches_scipy(self, seed: int) -> None:
        p = _random_p_values(seed)
        expected = false_discovery_control(np.array(p), method="bh")
        assert benjamini_hochberg(p) == pytest.approx(expected.tolist(), rel=1e-12)

    def test_never_above_holm_and_never_below_raw(self, seed: int) -> None:
        p = _random_p_values(seed)
        for raw, bh, fwer in zip(p, benjamini_hochberg(p), holm(p), strict=True):
            assert raw * (1 - 1e-12) <= bh <= fwer * (1 + 1e-12)  # p * m / m may round below p


def test_benjamini_hochberg_caps_at_one_and_keeps_order() -> None:
    adjusted = benjamini_hochberg([0.9, 0.8, 0.95])
    assert adjusted == pytest.approx([0.95, 0.95, 0.95])
    assert max(benjamini_hochberg([1.0, 1.0])) == 1.0


def test_benjamini_hochberg_all_equal_p_values_stay() -> None:
    assert benjamini_hochberg([0.02] * 4) == pytest.approx([0.02] * 4)


def test_benjamini_hochberg_empty_family() -> None:
    assert benjamini_hochberg([]) == []


# -- paired bootstrap -----------------------------------------------------------------------------------------

#: Joint probabilities of (baseline, candidate) outcomes: (1,1), (1,0), (0,1), (0,0).
SHIFT = (0.25, 0.05, 0.15, 0.55)  # baseline share 0.30, candidate share 0.40: true difference 0.10
NULL = (0.20, 0.10, 0.10, 0.60)  # both shares 0.30, a tenth of pairs discordant each way


def _paired_bernoulli(
    rng: np.random.Generator, n: int, joint: tuple[float, float, float, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    cell = rng.choice(4, size=n, p=joint)
    return np.isin(cell, (0, 1)).astype(float), np.isin(cell, (0, 2)).astype(float)


def _share_statistic(baseline: NDArray[np.float64], candidate: NDArray[np.float64]):  # type: ignore[no-untyped-def]
    """The two shares over resampled pairs: ``weights`` is (replicates, pairs) multiplicities."""

    def statistic(weights: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        total = weights.sum(axis=1)
        return weights @ baseline / total, weights @ candidate / total

    return statistic


def test_paired_bootstrap_interval_coverage_is_about_95_percent() -> None:
    rng = np.random.default_rng(2024)
    trials, hits = 200, 0
    for trial in range(trials):
        x, y = _paired_bernoulli(rng, 200, SHIFT)
        interval, _ = paired_bootstrap(_share_statistic(x, y), 200, n_boot=500, seed=trial)
        hits += interval.contains(0.10)
    assert 0.90 <= hits / trials <= 0.99


def test_paired_bootstrap_p_value_is_about_uniform_under_no_shift() -> None:
    rng = np.random.default_rng(7)
    p_values = []
    for trial in range(200):
        x, y = _paired_bernoulli(rng, 200, NULL)
        p_values.append(paired_bootstrap(_share_statistic(x, y), 200, n_boot=300, seed=trial)[1])
    below = np.mean(np.array(p_values) < 0.05)
    assert 0.02 <= below <= 0.09
    assert 0.35 <= np.median(p_values) <= 0.65


def test_paired_bootstrap_p_value_is_small_for_a_real_shift() -> None:
    x, y = _paired_bernoulli(np.random.default_rng(3), 400, SHIFT)
    n_boot = 1000
    interval, p = paired_bootstrap(_share_statistic(x, y), 400, n_boot=n_boot, seed=0)
    assert p < 1 / n_boot  # the normal test goes below the bootstrap's resolution, as Holm over many checks needs
    assert 0 < interval.low < interval.high
    assert interval.method == "paired bootstrap"
    assert interval.confidence == 0.95


def test_paired_bootstrap_p_value_matches_its_normal_test() -> None:
    x, y = _paired_bernoulli(np.random.default_rng(5), 150, SHIFT)
    statistic = _share_statistic(x, y)
    n_boot, seed = 400, 11
    _, p = paired_bootstrap(statistic, 150, n_boot=n_boot, seed=seed)
    # the replicates, drawn independently of the package: each resamples 150 pairs with replacement
    rng = np.random.default_rng([seed, zlib.crc32(b"paired")])
    deltas = []
    for weights in rng.multinomial(150, np.full(150, 1 / 150), size=n_boot):
        index = np.repeat(np.arange(150), weights)
        deltas.append(y[index].mean() - x[index].mean())
    observed = y.mean() - x.mean()
    assert p == pytest.approx(2 * norm.sf(abs(observed) / np.std(deltas, ddof=1)), rel=1e-9)


def test_paired_bootstrap_is_seeded() -> None:
    x, y = _paired_bernoulli(np.random.default_rng(1), 100, SHIFT)
    statistic = _share_statistic(x, y)
    assert paired_bootstrap(statistic, 100, 200, seed=4) == paired_bootstrap(statistic, 100, 200, seed=4)
    assert paired_bootstrap(statistic, 100, 200, seed=4) != paired_bootstrap(statistic, 100, 200, seed=5)


def test_paired_bootstrap_pairing_narrows_the_interval() -> None:
    # the same marginal shares, strongly correlated pairs vs independent pairs
    rng = np.random.default_rng(8)
    x_corr, y_corr = _paired_bernoulli(rng, 300, (0.28, 0.02, 0.12, 0.58))
    x_ind, y_ind = _paired_bernoulli(rng, 300, (0.12, 0.18, 0.28, 0.42))
    paired, _ = paired_bootstrap(_share_statistic(x_corr, y_corr), 300, 500, seed=0)
    independent, _ = paired_bootstrap(_share_statistic(x_ind, y_ind), 300, 500, seed=0)
    assert paired.high - paired.low < 0.7 * (independent.high - independent.low)


def test_paired_bootstrap_no_change_at_all_gives_p_one() -> None:
    x = np.array([1.0, 0.0, 1.0, 1.0, 0.0] * 10)
    interval, p = paired_bootstrap(_share_statistic(x, x.copy()), 50, 100, seed=0)
    assert p == 1.0
    assert (interval.low, interval.high) == (0.0, 0.0)


def test_paired_bootstrap_constant_nonzero_difference_gives_p_zero() -> None:
    interval, p = paired_bootstrap(lambda weights: (0.2, 0.5), 30, 100, seed=0)
    assert p == 0.0
    assert interval.low == interval.high == pytest.approx(0.3)


def test_paired_bootstrap_tolerates_a_few_unavailable_replicates() -> None:
    # unavailable when image 0 is left out of the replicate: (1 - 1/n)^n, about 37% of replicates
    def statistic(weights: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
        return np.where(weights[:, 0] > 0, 0.5, math.nan), 0.6

    interval, p = paired_bootstrap(statistic, 40, 300, seed=0)
    assert interval.low == interval.high == pytest.approx(0.1)
    assert p == 0.0


def test_paired_bootstrap_error_when_mostly_unavailable() -> None:
    # unavailable unless image 0 is resampled twice or more: about 26% of replicates available
    def statistic(weights: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        available = (weights[:, 0] >= 2) | (weights == 1).all(axis=1)
        return 0.5, np.where(available, 0.6, math.nan)

    with pytest.raises(ValueError, match=r"the statistic was unavailable in \d+ of 300 replicates"):
        paired_bootstrap(statistic, 40, 300, seed=0)


def test_paired_bootstrap_error_when_unavailable_on_the_data_itself() -> None:
    def statistic(weights: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
        return np.where((weights == 1).all(axis=1), math.nan, 0.4), 0.5

    with pytest.raises(ValueError, match="the statistic is unavailable on the data itself"):
        paired_bootstrap(statistic, 20, 100, seed=0)


# -- unpaired fallback ----------------------------------------------------------------------------------------


def _se(interval: Interval) -> float:
    return (interval.high - interval.low) / (2 * norm.ppf(0.5 + interval.confidence / 2))


@pytest.mark.parametrize(
    ("delta", "baseline", "candidate"),
    [
        (0.1, Interval(0.2, 0.4, "wilson", 0.95), Interval(0.25, 0.55, "bootstrap", 0.95)),
        (-0.05, Interval(0.2, 0.4, "wilson", 0.95), Interval(0.3, 0.6, "bootstrap", 0.9)),
        (0.3, Interval(0.1, 0.12, "wilson", 0.99), Interval(0.4, 0.5, "wilson", 0.8)),
    ],
)
class TestUnpairedZ:
    def test_matches_a_hand_computation(self, delta: float, baseline: Interval, candidate: Interval) -> None:
        se = math.hypot(_se(baseline), _se(candidate))
        assert unpaired_z(delta, baseline, candidate) == pytest.approx(2 * norm.sf(abs(delta) / se), rel=1e-9)

    def test_one_interval_missing_uses_the_other(self, delta: float, baseline: Interval, candidate: Interval) -> None:
        expected = 2 * norm.sf(abs(delta) / _se(candidate))
        assert unpaired_z(delta, None, candidate) == pytest.approx(expected, rel=1e-9)

    def test_symmetric_in_the_sign_of_delta(self, delta: float, baseline: Interval, candidate: Interval) -> None:
        assert unpaired_z(-delta, baseline, candidate) == pytest.approx(unpaired_z(delta, baseline, candidate))


def test_unpaired_z_by_hand_numbers() -> None:
    # width 0.1 at 95%: se = 0.1 / (2 * 1.959964) = 0.025510 per side, 0.036077 together;
    # z = 0.1 / 0.036077 = 2.7718, p = 2 * (1 - Phi(2.7718)) = 0.005575
    iv = Interval(0.3, 0.4, "wilson", 0.95)
    assert unpaired_z(0.1, iv, iv) == pytest.approx(0.005575, abs=2e-6)


def test_unpaired_z_without_intervals() -> None:
    assert unpaired_z(0.0, None, None) == 1.0
    assert unpaired_z(0.2, None, None) == 0.0


def test_unpaired_z_zero_width_intervals() -> None:
    point = Interval(0.4, 0.4, "wilson", 0.95)
    assert unpaired_z(0.0, point, point) == 1.0
    assert unpaired_z(0.01, point, point) == 0.0


# -- power ------------------------------------------------------------------------------------------------


def _connor(effect: float, psi: float, alpha: float, power: float) -> float:
    psi = max(psi, abs(effect))
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    return (za * math.sqrt(psi) + zb * math.sqrt(psi - effect**2)) ** 2 / effect**2


@pytest.mark.parametrize(
    ("effect", "psi", "alpha"),
    [(0.10, 0.20, 0.01), (0.10, 0.30, 0.01), (0.05, 0.20, 0.05), (0.08, 0.25, 0.05), (0.20, 0.40, 0.01)],
)
class TestImagesForPower:
    def test_closed_form(self, effect: float, psi: float, alpha: float) -> None:
        assert images_for_power(effect, psi, alpha) == math.ceil(_connor(effect, psi, alpha, 0.9))
        assert images_for_power(effect, psi, alpha, power=0.8) == math.ceil(_connor(effect, psi, alpha, 0.8))

    def test_sign_of_effect_does_not_matter(self, effect: float, psi: float, alpha: float) -> None:
        assert images_for_power(-effect, psi, alpha) == images_for_power(effect, psi, alpha)

    def test_exact_mcnemar_has_the_power_at_that_n(self, effect: float, psi: float, alpha: float) -> None:
        n = images_for_power(effect, psi, alpha)
        assert _simulated_power(n, effect, psi, alpha, seed=round(1000 * effect + 100 * psi)) == pytest.approx(
            0.9, abs=0.07
        )

    def test_fewer_images_for_a_larger_effect(self, effect: float, psi: float, alpha: float) -> None:
        assert images_for_power(1.5 * effect, psi, alpha) < images_for_power(effect, psi, alpha)


def _simulated_power(n: int, effect: float, psi: float, alpha: float, seed: int, sims: int = 600) -> float:
    """Share of simulated studies of ``n`` pairs in which exact McNemar rejects at ``alpha``."""
    rng = np.random.default_rng(seed)
    p10, p01 = (psi - effect) / 2, (psi + effect) / 2
    rejected = 0
    for b, c, _ in rng.multinomial(n, [p10, p01, 1 - psi], size=sims):
        rejected += mcnemar_exact([True] * b + [False] * c, [False] * b + [True] * c)[0] < alpha
    return rejected / sims


def test_images_for_power_docstring_value_by_hand() -> None:
    # (2.5758 * sqrt(0.1) + 1.2816 * sqrt(0.1 - 0.01))^2 / 0.01 = 143.8
    assert images_for_power(0.10, 0.10, 0.01) == 144


def test_images_for_power_discordance_below_the_effect_is_raised_to_it() -> None:
    assert images_for_power(0.10, 0.02, 0.01) == images_for_power(0.10, 0.10, 0.01)


def test_images_for_power_one_way_discordance_is_conservative() -> None:
    # every discordant pair moves one way (as with the synthetic model's coupling): the normal approximation
    # over-asks, so the exact test has at least the requested power there
    n = images_for_power(0.10, 0.10, 0.01)
    assert _simulated_power(n, 0.10, 0.10, 0.01, seed=0) >= 0.9


def test_images_for_power_more_for_stricter_alpha_and_more_power() -> None:
    assert images_for_power(0.1, 0.2, 0.001) > images_for_power(0.1, 0.2, 0.01) > images_for_power(0.1, 0.2, 0.05)
    assert images_for_power(0.1, 0.2, 0.01, power=0.95) > images_for_power(0.1, 0.2, 0.01, power=0.8)


def test_images_for_power_zero_effect_error() -> None:
    with pytest.raises(ValueError, match=r"`effect` must be non-zero, got 0\.0"):
        images_for_power(0.0, 0.1, 0.01)


# -- permutation tests (statistics v2) ----------------------------------------------------------------------


def _share_difference(onehot_true: NDArray[np.float64]):  # type: ignore[no-untyped-def]
    """candidate - baseline share of types flagged in ``onehot_true``, for weights over the types."""

    def statistic(base_w: NDArray[np.float64], cand_w: NDArray[np.float64]) -> NDArray[np.float64]:
        return cand_w @ onehot_true / cand_w.sum(axis=1) - base_w @ onehot_true / base_w.sum(axis=1)

    return statistic


def _exact_swap_p(x: NDArray[np.bool_], y: NDArray[np.bool_]) -> float:
    """Every one of the 2^d swaps of the discordant pairs, enumerated (the exact permutation p-value)."""
    import itertools

    n = len(x)
    observed = abs(y.mean() - x.mean())
    discordant = [i for i in range(n) if x[i] != y[i]]
    extreme = 0
    for flips in itertools.product((False, True), repeat=len(discordant)):
        xs, ys = x.copy(), y.copy()
        for i, flip in zip(discordant, flips, strict=True):
            if flip:
                xs[i], ys[i] = y[i], x[i]
        extreme += abs(ys.mean() - xs.mean()) >= observed - 1e-12
    return extreme / 2 ** len(discordant)


@pytest.mark.parametrize("seed", range(4))
def test_swap_permutation_matches_the_exact_enumeration(seed: int) -> None:
    from pytest_t2ibias.judge.stats import swap_permutation_test

    rng = np.random.default_rng(seed)
    n = 30
    x = rng.random(n) < 0.4
    y = np.where(rng.random(n) < 0.35, rng.random(n) < 0.6, x)  # about a third of the pairs re-drawn
    # types: 0 = no, 1 = yes; kinds of pair (base type, candidate type, count)
    kinds, counts = np.unique(np.stack([x, y], axis=1).astype(np.intp), axis=0, return_counts=True)
    pairs = (kinds[:, 0], kinds[:, 1], counts.astype(np.int64))
    test = swap_permutation_test(_share_difference(np.array([0.0, 1.0])), pairs, types=2, seed=seed)
    exact = _exact_swap_p(x, y)
    assert test.p_value == pytest.approx(exact, abs=0.03)  # Monte Carlo error of 2,000+ permutations
    assert test.p_value > 0
    # for a yes/no outcome the swap test is McNemar's exact test (same null distribution)
    assert exact == pytest.approx(mcnemar_exact(x, y)[0], abs=1e-9)


@pytest.mark.parametrize("test_kind", ["swap", "pooled"])
def test_permutation_tests_hold_their_level_at_small_n(test_kind: str) -> None:
    from pytest_t2ibias.judge.stats import pooled_permutation_test, swap_permutation_test

    rng = np.random.default_rng(11)
    rejections, trials, n = 0, 400, 15
    statistic = _share_difference(np.array([0.0, 1.0, 0.0]))
    for trial in range(trials):
        x = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
        y = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])  # the same model, independent images
        if test_kind == "swap":
            kinds, counts = np.unique(np.stack([x, y], axis=1), axis=0, return_counts=True)
            pairs = (kinds[:, 0].astype(np.intp), kinds[:, 1].astype(np.intp), counts.astype(np.int64))
            p = swap_permutation_test(statistic, pairs, types=3, seed=trial).p_value
        else:
            base, cand = np.bincount(x, minlength=3), np.bincount(y, minlength=3)
            p = pooled_permutation_test(statistic, base, cand, seed=trial).p_value
        rejections += p <= 0.05
    assert rejections / trials <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / trials)


def test_permutation_refines_small_p_values() -> None:
    from pytest_t2ibias.judge.stats import PERMUTATIONS, pooled_permutation_test

    statistic = _share_difference(np.array([0.0, 1.0]))
    test = pooled_permutation_test(statistic, np.array([180, 20]), np.array([100, 100]), seed=0)
    assert test.permutations == sum(PERMUTATIONS)  # fewer than 20 as extreme in the first pass: refined
    assert 0 < test.p_value < 1e-3


def test_identical_samples_give_p_one_and_no_spread() -> None:
    from pytest_t2ibias.judge.stats import swap_permutation_test

    pairs = (np.array([0, 1]), np.array([0, 1]), np.array([7, 8], dtype=np.int64))
    test = swap_permutation_test(_share_difference(np.array([0.0, 1.0])), pairs, types=2)
    assert (test.p_value, test.se) == (1.0, 0.0)


def test_one_sided_permutation_counts_only_worse() -> None:
    """``alternative="greater"``: the statistic is the worsening; an improvement of the same size has
    p near 1, a worsening the exact tail of the swaps (all 8 discordant pairs worse: 1/256, so p ~ 1/256)."""
    from pytest_t2ibias.judge.stats import swap_permutation_test

    def worse(base_w, cand_w):  # type: ignore[no-untyped-def]
        return cand_w[:, 1] - base_w[:, 1]  # share of type 1 grows: worse

    pairs_worse = (np.array([0, 0]), np.array([0, 1]), np.array([12, 8]))  # 8 pairs type 0 -> type 1
    pairs_better = (np.array([0, 1]), np.array([0, 0]), np.array([12, 8]))  # 8 pairs type 1 -> type 0
    up = swap_permutation_test(worse, pairs_worse, 2, seed=1, alternative="greater")
    down = swap_permutation_test(worse, pairs_better, 2, seed=1, alternative="greater")
    both = swap_permutation_test(worse, pairs_worse, 2, seed=1)
    assert up.p_value == pytest.approx(1 / 256, rel=0.35)
    assert both.p_value == pytest.approx(2 / 256, rel=0.35)
    assert down.p_value > 0.99
    assert up.se == pytest.approx(math.sqrt(8), rel=0.05)  # root mean square of the swaps' change (counts)
