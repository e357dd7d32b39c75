"""Pure statistics of the judge: exact tests, resampling, multiple-comparison corrections, power.

Nothing here knows about images, pytest or syrupy. The intervals every metric carries are computed by the
measure stage (:mod:`pytest_t2ibias.metrics.intervals`) and re-exported here, so the judge's statistics
can be imported from one place.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binomtest, false_discovery_control, norm

from pytest_t2ibias.metrics.intervals import (
    Interval,
    bootstrap_intervals,
    clopper_pearson_upper,
    wilson_interval,
)

__all__ = [
    "Interval",
    "benjamini_hochberg",
    "bootstrap_intervals",
    "clopper_pearson_upper",
    "holm",
    "images_for_power",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_difference_upper",
    "pooled_permutation_test",
    "sign_test_greater",
    "swap_permutation_test",
    "unpaired_se",
    "unpaired_z",
    "wilson_interval",
]

#: Paired statistic: (B, units) multiplicities -> (baseline values, candidate values), one per row.
PairedStatistic = Callable[[NDArray[np.float64]], tuple[ArrayLike, ArrayLike]]


# -- paired comparisons and multiple-comparison control -------------------------------------------------


def mcnemar_exact(baseline: Sequence[bool], candidate: Sequence[bool]) -> tuple[float, int, int]:
    r"""Exact McNemar test of paired binary outcomes: the two-sided binomial test of the discordant pairs
    (``scipy.stats.binomtest``).

    With :math:`b` pairs where only the baseline is true and :math:`c` where only the candidate is,
    under no change :math:`b \sim \mathrm{Bin}(b + c, 1/2)`:

    .. math::
        p = \min\Big(1,\; 2 \sum_{i=0}^{\min(b, c)} \binom{b+c}{i} 2^{-(b+c)}\Big)

    Returns ``(p, b, c)``.

    Example:
        >>> p, b, c = mcnemar_exact([1, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1])
        >>> round(p, 4), b, c
        (0.25, 3, 0)
    """
    x = np.asarray(baseline, dtype=bool)
    y = np.asarray(candidate, dtype=bool)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"`baseline` and `candidate` must be 1-d of equal length, got {x.shape} and {y.shape}")
    b = int((x & ~y).sum())
    c = int((~x & y).sum())
    if b == c:
        return 1.0, b, c  # exactly balanced
    return min(1.0, float(binomtest(b, b + c, 0.5).pvalue)), b, c


def sign_test_greater(worse: int, better: int) -> float:
    """One-sided exact McNemar (sign) test (``scipy.stats.binomtest``): P(X >= worse) for
    X ~ Bin(worse + better, 1/2), the p-value of "no change" against "worse" from the pairs that changed each
    way (1 when none changed).

    Example:
        >>> sign_test_greater(5, 0)
        0.03125
    """
    if worse + better == 0:
        return 1.0
    return float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control; uniformly beats Bonferroni). Written
    here: scipy has no Holm adjustment (statsmodels' ``multipletests`` does, and is not a dependency).

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate control, for warn-level checks), from
    ``scipy.stats.false_discovery_control``.

    Example:
        >>> [round(p, 3) for p in benjamini_hochberg([0.01, 0.04, 0.03])]
        [0.03, 0.04, 0.04]
    """
    if len(p_values) == 0:
        return []
    return [float(p) for p in false_discovery_control(np.asarray(p_values, dtype=np.float64), method="bh")]


def paired_bootstrap_draws(
    statistic: PairedStatistic,
    units: int | ArrayLike,
    n_boot: int = 2000,
    seed: int = 0,
    stream: str = "paired",
) -> tuple[float, NDArray[np.float64]]:
    """The observed candidate - baseline difference and its bootstrap replicates over image pairs.

    ``units`` are the resampled units: an int n for n single pairs, or the counts of each distinct
    kind of pair (pairs with the same baseline and candidate outcomes are exchangeable, so the
    comparison engine collapses them). Resampling n pairs with replacement is then one multinomial
    draw per replicate, all replicates at once. ``statistic(weights)`` gets a (B, units) matrix of
    multiplicities and returns the metric of the baseline and of the candidate for each row; a
    replicate where either is not finite is left out.
    """
    counts = np.ones(units) if isinstance(units, int) else np.asarray(units, dtype=np.float64)
    total = round(float(counts.sum()))
    if total == 0:
        raise ValueError("no pairs to resample")
    observed_pair = statistic(counts[None, :])
    observed = float(np.asarray(observed_pair[1], dtype=np.float64).reshape(-1)[0]) - float(
        np.asarray(observed_pair[0], dtype=np.float64).reshape(-1)[0]
    )
    if not math.isfinite(observed):
        raise ValueError("the statistic is unavailable on the data itself")
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    weights = rng.multinomial(total, counts / total, size=n_boot).astype(np.float64)
    base, cand = statistic(weights)
    deltas = np.broadcast_to(np.asarray(cand, dtype=np.float64), (n_boot,)) - np.broadcast_to(
        np.asarray(base, dtype=np.float64), (n_boot,)
    )
    kept = deltas[np.isfinite(deltas)]
    if len(kept) < n_boot / 2:
        raise ValueError(f"the statistic was unavailable in {n_boot - len(kept)} of {n_boot} replicates")
    return observed, kept


def paired_bootstrap(
    statistic: PairedStatistic,
    units: int | ArrayLike,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    stream: str = "paired",
) -> tuple[Interval, float]:
    """Paired bootstrap of a difference: resample image pairs, recompute (baseline, candidate) on each.

    Returns the percentile interval of candidate - baseline and a two-sided p-value for "no change"
    from the bootstrap standard error (a normal test: unlike counting replicates beyond zero, it can
    go below 1 / n_boot, which a family-wise correction over many checks needs).
    """
    observed, deltas = paired_bootstrap_draws(statistic, units, n_boot, seed, stream)
    alpha = 1 - confidence
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), "paired bootstrap", confidence), se_p_value(observed, deltas)


#: A statistic of two runs' samples: (B, types) baseline weights, (B, types) candidate weights -> (B,)
#: candidate - baseline differences (NaN where a sample has no value).
TwoSampleStatistic = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]
#: "two-sided": any change is evidence; "greater": only a large statistic (a worsening) is.
Alternative = Literal["two-sided", "greater"]
#: Monte Carlo sizes of a permutation test: a first pass, and a refinement when the p-value is small.
PERMUTATIONS = (2000, 40000)


@dataclass(frozen=True, kw_only=True)
class PermutationResult:
    """A permutation test of "no change": its p-value, and the spread of the change under no change."""

    p_value: float
    se: float
    permutations: int


def swap_permutation_test(
    statistic: TwoSampleStatistic,
    pairs: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]],
    types: int,
    seed: int = 0,
    stream: str = "swap",
    alternative: Alternative = "two-sided",
) -> PermutationResult:
    """Paired permutation test: under no change, baseline and candidate are exchangeable within each pair,
    so swapping them in a random half of the pairs draws from the null distribution of the change.

    ``pairs`` are the kinds of pair (baseline type, candidate type, count): swapping s of the m pairs of a
    kind moves s images from one side's type to the other's, s ~ Bin(m, 1/2), every permutation at once.
    Monte Carlo p-value (1 + #{|T*| >= |T|}) / (B + 1) (``alternative="greater"``: #{T* >= T}, for a
    statistic that is the worsening): exact in level at any n, and never 0; 2,000 permutations, then
    40,000 when fewer than 20 reach the observed change.
    """
    u, v, m = pairs
    onehot_u = np.zeros((len(m), types))
    onehot_u[np.arange(len(m)), u] = 1.0
    onehot_v = np.zeros((len(m), types))
    onehot_v[np.arange(len(m)), v] = 1.0
    m_f = m.astype(np.float64)
    observed = _observed(statistic(m_f[None, :] @ onehot_u, m_f[None, :] @ onehot_v))
    movable = np.where(u != v, m, 0)  # swapping a pair of equal types changes nothing

    def draw(rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        swapped = rng.binomial(movable, 0.5, size=(size, len(m))).astype(np.float64)
        kept = m_f[None, :] - swapped
        return statistic(kept @ onehot_u + swapped @ onehot_v, swapped @ onehot_u + kept @ onehot_v)

    return _monte_carlo(observed, draw, seed, stream, alternative)


def pooled_permutation_test(
    statistic: TwoSampleStatistic,
    base_counts: NDArray[np.int64],
    cand_counts: NDArray[np.int64],
    seed: int = 0,
    stream: str = "pooled",
    alternative: Alternative = "two-sided",
) -> PermutationResult:
    """Unpaired permutation test: under no change, which run an image came from is exchangeable, so
    dealing the pooled images back into runs of the same sizes at random draws from the null.

    The pooled types' counts are dealt by multivariate hypergeometric draws, every permutation at once.
    Two-sided Monte Carlo p-value as :func:`swap_permutation_test`.
    """
    base = base_counts.astype(np.float64)
    cand = cand_counts.astype(np.float64)
    observed = _observed(statistic(base[None, :], cand[None, :]))
    pooled = (base_counts + cand_counts).astype(np.int64)
    n_base = int(base_counts.sum())

    def draw(rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        dealt = rng.multivariate_hypergeometric(pooled, n_base, size=size).astype(np.float64)
        return statistic(dealt, pooled[None, :].astype(np.float64) - dealt)

    return _monte_carlo(observed, draw, seed, stream, alternative)


def _observed(values: NDArray[np.float64]) -> float:
    observed = float(np.asarray(values, dtype=np.float64).reshape(-1)[0])
    if not math.isfinite(observed):
        raise ValueError("the statistic is unavailable on the data itself")
    return observed


def _monte_carlo(
    observed: float,
    draw: Callable[[np.random.Generator, int], NDArray[np.float64]],
    seed: int,
    stream: str,
    alternative: Alternative = "two-sided",
) -> PermutationResult:
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    done: list[NDArray[np.float64]] = []
    for size in PERMUTATIONS:
        values = np.asarray(draw(rng, size), dtype=np.float64)
        done.append(values[np.isfinite(values)])
        kept = np.concatenate(done)
        if len(kept) < sum(PERMUTATIONS[: len(done)]) / 2:
            raise ValueError("the statistic is unavailable in most permutations")
        if alternative == "greater":
            extreme = int((kept >= observed - 1e-12).sum())
        else:
            extreme = int((np.abs(kept) >= abs(observed) - 1e-12).sum())
        if extreme >= 20:
            break
    # the spread of the statistic under no change (centred on 0 there: its root mean square)
    se = (
        float(np.sqrt(np.mean(kept**2)))
        if alternative == "greater" and len(kept)
        else (float(kept.std(ddof=1)) if len(kept) > 1 else 0.0)
    )
    return PermutationResult(p_value=(extreme + 1) / (len(kept) + 1), se=se, permutations=len(kept))


def se_p_value(observed: float, deltas: NDArray[np.float64]) -> float:
    """Two-sided normal p-value of ``observed`` with the bootstrap replicates' standard error."""
    se = float(deltas.std(ddof=1))
    if se == 0:
        return 1.0 if observed == 0 else 0.0
    return float(2 * norm.sf(abs(observed) / se))


def unpaired_se(baseline: Interval | None, candidate: Interval | None) -> float | None:
    """Standard error of a difference of two independent estimates, from their normal intervals."""
    ses = [(iv.high - iv.low) / (2 * float(norm.ppf(0.5 + iv.confidence / 2))) for iv in (baseline, candidate) if iv]
    return math.sqrt(sum(s * s for s in ses)) if ses else None


def unpaired_z(delta: float, baseline: Interval | None, candidate: Interval | None) -> float:
    """Two-sided p-value of a difference from the two runs' own intervals (normal approximation).

    The fallback when images cannot be paired (an older baseline without per-image labels).
    """
    se = unpaired_se(baseline, candidate) or 0.0
    if se == 0:
        return 0.0 if delta != 0 else 1.0
    return float(2 * norm.sf(abs(delta) / se))


def images_for_power(effect: float, p_discordant: float, alpha: float, power: float = 0.9) -> int:
    r"""Pairs needed for a McNemar-type paired test to detect a shift ``effect`` in a share.

    With discordant-pair rate :math:`\psi` (at least :math:`|\delta|`), the usual normal approximation
    (Connor 1987):

    .. math::
        n = \frac{\big(z_{1-\alpha/2}\sqrt{\psi} + z_{power}\sqrt{\psi - \delta^2}\big)^2}{\delta^2}

    Example:
        >>> images_for_power(0.10, 0.10, 0.01)
        144
    """
    delta = abs(effect)
    if delta <= 0:
        raise ValueError(f"`effect` must be non-zero, got {effect}")
    psi = max(p_discordant, delta)
    za = float(norm.ppf(1 - alpha / 2))
    zb = float(norm.ppf(power))
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / (delta * delta)
    return math.ceil(n)


def paired_difference_upper(gained: int, lost: int, n: int, z: float) -> float:
    r"""One-sided upper bound of a paired difference of shares, delta = p(gained) - p(lost), from ``gained``
    pairs that turned yes and ``lost`` that turned no among ``n``: the score bound (Tango 1998).

    The largest delta the observed change d = (gained - lost) / n is not significantly below, its spread
    taken at delta itself, sqrt((2 q + delta - delta^2) / n), with q the share of lost pairs under delta
    (the constrained maximum likelihood). The Wald bound d + z sqrt((psi - d^2) / n) uses the spread
    measured at d, and a run that sees too few changed pairs sees both a smaller change and a smaller
    spread: it is too low more often than its level says; the score bound is not.

    Example:
        >>> round(paired_difference_upper(30, 0, 200, 1.6448536269514722), 4)
        0.1962
    """
    if n <= 0:
        return 1.0
    d = (gained - lost) / n

    def lost_share(delta: float) -> float:
        # the constrained maximum likelihood of q = p(lost), p(gained) = q + delta: the root of
        # 2n q^2 + (delta (2n + lost - gained) - lost - gained) q - lost delta (1 - delta) = 0
        # where q >= max(0, -delta)
        b = delta * (2.0 * n + lost - gained) - lost - gained
        c = -lost * delta * (1.0 - delta)
        return max((-b + math.sqrt(max(b * b - 8.0 * n * c, 0.0))) / (4.0 * n), 0.0, -delta)

    def score(delta: float) -> float:
        q = lost_share(delta)
        var = max(2.0 * q + delta - delta * delta, 0.0) / n
        return (delta - d) / math.sqrt(var) if var > 0 else math.inf

    low, high = d, 1.0
    if score(high) <= z:
        return 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if score(mid) < z else (low, mid)
    return high
