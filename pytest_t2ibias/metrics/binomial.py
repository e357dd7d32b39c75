"""Intervals and bounds of a binomial share: the exact (Clopper-Pearson) interval and upper bound, Wilson's
interval, binomial tails. Nothing here reads a category: the scorer card and the metric intervals use it
(:mod:`~pytest_t2ibias.metrics.intervals` re-exports every name).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

from pydantic import ConfigDict
from scipy.stats import beta, binom, norm

#: Confidence of every metric interval.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A two-sided interval and how it was obtained."""

    # Stated, not inherited: pydantic 2.14 started to pass the enclosing model's extra="forbid" into stdlib
    # dataclasses, so the published results schema changed with the installed pydantic.
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    low: float
    high: float
    method: str
    confidence: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
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
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 or n successes the interval ends exactly on the bound (rounding must not leave a truth of 1 out)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high, "wilson", confidence)


def binomial_tail(x: int, m: int, p: float, upper: bool) -> float:
    """P(X >= x) (``upper``) or P(X <= x) for X ~ Bin(m, p), exact (``scipy.stats.binom``).

    Example:
        >>> round(binomial_tail(5, 5, 0.5, upper=True), 5)
        0.03125
    """
    if upper:
        return float(min(1.0, binom.sf(x - 1, m, p)))
    return float(min(1.0, binom.cdf(x, m, p)))


@functools.lru_cache(maxsize=4096)
def clopper_pearson_upper(x: int, n: int, confidence: float = CONFIDENCE) -> float:
    """Exact one-sided upper confidence bound of a binomial share from ``x`` successes in ``n``: the
    largest p with P(X <= x) >= 1 - confidence (1 when x == n; 3 / n, the "rule of three", at x = 0).

    In closed form, the ``confidence`` quantile of Beta(x + 1, n - x) (``scipy.stats.beta.ppf``), the
    same bound ``statsmodels``' ``proportion_confint(method="beta")`` gives.

    Example:
        >>> round(clopper_pearson_upper(0, 15), 4)
        0.181
    """
    if n <= 0 or x >= n:
        return 1.0
    return float(beta.ppf(confidence, x + 1, n - x))


@functools.lru_cache(maxsize=4096)
def exact_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Clopper-Pearson ("exact") interval of a binomial share: each end's tail is at most (1 - confidence) / 2
    under any true share, so coverage never falls below ``confidence``. Wilson's interval, shorter on
    average, dips to ~85 % near 0 and 1 at small n (32 images, a true rate of 0.996).

    Example:
        >>> iv = exact_interval(31, 32)
        >>> round(iv.low, 4), round(iv.high, 4)
        (0.8378, 0.9992)
    """
    if n <= 0:
        raise ValueError(f"`n` must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"`successes` must be in [0, n={n}], got {successes}")
    tail = (1 + confidence) / 2
    high = clopper_pearson_upper(successes, n, tail)
    low = 1.0 - clopper_pearson_upper(n - successes, n, tail)
    return Interval(low, high, "exact", confidence)
