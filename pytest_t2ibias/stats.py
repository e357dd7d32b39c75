"""Intervals for metric estimates: Wilson for proportions, seeded percentile bootstrap for the rest.

A bias metric from a few hundred images is an estimate; every gated value carries an interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.engine import compute_data
from pytest_t2ibias.metrics.registry import CategoryData

#: Metrics that are a share of images (k of n): their interval is Wilson's. Others are bootstrapped.
PROPORTION_METRICS = frozenset({"unknown_rate", "car", "hallucination"})


@dataclass(frozen=True)
class Interval:
    """A two-sided interval and how it was obtained."""

    low: float
    high: float
    method: str
    confidence: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    r"""Wilson score interval for a binomial proportion (good coverage even near 0 and 1).

    .. math::
        \frac{\hat p + \frac{z^2}{2n} \pm z \sqrt{\frac{\hat p (1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}

    Example:
        >>> iv = wilson_interval(7, 10)
        >>> round(iv.low, 4), round(iv.high, 4)
        (0.3968, 0.8922)
    """
    if n <= 0:
        raise ValueError(f"`n` must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"`successes` must be in [0, n={n}], got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half), "wilson", confidence)


def bootstrap_intervals(
    data: CategoryData,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    metrics: Collection[str] | None = None,
) -> dict[str, Interval]:
    """Percentile bootstrap intervals of every scalar metric (or of ``metrics``), resampling images.

    Seeded, so the same data gives the same intervals. A replicate in which a metric is unavailable
    (e.g. every resampled label unknown) is left out for that metric; a metric available in fewer
    than half of the replicates gets no interval.
    """
    if n_boot < 10:
        raise ValueError(f"`n_boot` must be >= 10, got {n_boot}")
    n = data.n
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        replicate = compute_data(data.resample(rng.integers(0, n, size=n)), only=metrics)
        for metric_id, value in replicate.metrics.items():
            if isinstance(value, float | int) and not isinstance(value, bool):
                draws.setdefault(metric_id, []).append(float(value))
    alpha = 1 - confidence
    out = {}
    for metric_id, values in draws.items():
        if len(values) >= n_boot / 2:
            low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
            out[metric_id] = Interval(float(low), float(high), "bootstrap", confidence)
    return out


# -- paired comparisons and multiple-comparison control -------------------------------------------------


def mcnemar_exact(baseline: Sequence[bool], candidate: Sequence[bool]) -> tuple[float, int, int]:
    r"""Exact McNemar test of paired binary outcomes: the two-sided binomial test of the discordant pairs.

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
    n = b + c
    if b == c:
        return 1.0, b, c  # exactly balanced (the tail sum would round to just below 1)
    k = min(b, c)
    # log-space binomial tail: exact for any n without overflow
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)
    ]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return min(1.0, 2 * tail), b, c


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control; uniformly beats Bonferroni).

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
    """Benjamini-Hochberg adjusted p-values (false discovery rate control, for warn-level checks).

    Example:
        >>> [round(p, 3) for p in benjamini_hochberg([0.01, 0.04, 0.03])]
        [0.03, 0.04, 0.04]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for rank_from_top, i in enumerate(order):
        rank = m - rank_from_top
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def paired_bootstrap_draws(
    statistic: Callable[[NDArray[np.intp]], tuple[float, float]], n: int, n_boot: int = 2000, seed: int = 0
) -> tuple[float, NDArray[np.float64]]:
    """The observed candidate - baseline difference and its bootstrap replicates over image pairs.

    ``statistic(index)`` returns the metric of the baseline and of the candidate on the pairs ``index``;
    replicates where either is unavailable are left out.
    """
    rng = np.random.default_rng(seed)
    base, cand = statistic(np.arange(n))
    observed = cand - base
    if not math.isfinite(observed):
        raise ValueError("the statistic is unavailable on the data itself")
    deltas = []
    for _ in range(n_boot):
        b, c = statistic(rng.integers(0, n, size=n))
        if math.isfinite(b) and math.isfinite(c):
            deltas.append(c - b)
    if len(deltas) < n_boot / 2:
        raise ValueError(f"the statistic was unavailable in {n_boot - len(deltas)} of {n_boot} replicates")
    return observed, np.asarray(deltas)


def paired_bootstrap(
    statistic: Callable[[NDArray[np.intp]], tuple[float, float]],
    n: int,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[Interval, float]:
    """Paired bootstrap of a difference: resample image pairs, recompute (baseline, candidate) on each.

    Returns the percentile interval of candidate - baseline and a two-sided p-value for "no change"
    from the bootstrap standard error (a normal test: unlike counting replicates beyond zero, it can
    go below 1 / n_boot, which a family-wise correction over many checks needs).
    """
    observed, deltas = paired_bootstrap_draws(statistic, n, n_boot, seed)
    alpha = 1 - confidence
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), "paired bootstrap", confidence), se_p_value(observed, deltas)


def se_p_value(observed: float, deltas: NDArray[np.float64]) -> float:
    """Two-sided normal p-value of ``observed`` with the bootstrap replicates' standard error."""
    se = float(deltas.std(ddof=1))
    if se == 0:
        return 1.0 if observed == 0 else 0.0
    return 2 * (1 - NormalDist().cdf(abs(observed) / se))


def unpaired_se(baseline: Interval | None, candidate: Interval | None) -> float | None:
    """Standard error of a difference of two independent estimates, from their normal intervals."""
    ses = [
        (iv.high - iv.low) / (2 * NormalDist().inv_cdf(0.5 + iv.confidence / 2)) for iv in (baseline, candidate) if iv
    ]
    return math.sqrt(sum(s * s for s in ses)) if ses else None


def unpaired_z(delta: float, baseline: Interval | None, candidate: Interval | None) -> float:
    """Two-sided p-value of a difference from the two runs' own intervals (normal approximation).

    The fallback when images cannot be paired (an older baseline without per-image labels).
    """
    se = unpaired_se(baseline, candidate) or 0.0
    if se == 0:
        return 0.0 if delta != 0 else 1.0
    return 2 * (1 - NormalDist().cdf(abs(delta) / se))


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
    za = NormalDist().inv_cdf(1 - alpha / 2)
    zb = NormalDist().inv_cdf(power)
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / (delta * delta)
    return math.ceil(n)
