"""Intervals for metric estimates: Wilson for proportions, seeded percentile bootstrap for the rest.

A bias metric from a few hundred images is an estimate; every gated value carries an interval.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

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
