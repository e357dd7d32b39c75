"""Intervals for metric estimates: Wilson for per-image yes/no outcomes, a seeded bootstrap for the rest.

A bias metric from a few hundred images is an estimate; every gated value carries an interval. Which
interval a metric gets is the registry's call (:attr:`MetricDef.outcome`), not a list kept here.

The bootstrap of a count metric resamples image *types* (:mod:`~pytest_t2ibias.metrics.counts`) by
multinomial draws, all replicates at once; a data metric (captions, embeddings, custom metrics) is
recomputed replicate by replicate on resampled images.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.counts import multinomial_draws, stats_of, type_table
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.engine import CategoryMetrics, reported_metrics
from pytest_t2ibias.metrics.registry import MetricDef, Outcome, metric_def, reads_of

#: Bootstrap replicates for metric intervals (seeded: same data, same intervals).
N_BOOT = 1000
#: Confidence of every metric interval.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A two-sided interval and how it was obtained."""

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
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half), "wilson", confidence)


def outcome_indicator(data: CategoryData, outcome: Outcome) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """The per-image outcome and the images its mean is taken over (both boolean, one per image)."""
    everyone = np.ones(data.n, dtype=bool)
    if outcome.kind == "any":
        assert outcome.target is not None
        return np.asarray(data.present[outcome.target].any(axis=1), dtype=bool), everyone
    assert data.attribute is not None
    codes = data.label_codes()
    known_names = np.array([data.is_known(name) for name in codes.names], dtype=bool)
    known = known_names[codes.codes] if codes.names else np.zeros(data.n, dtype=bool)
    if outcome.kind == "unknown":
        return ~known, everyone
    hit = np.array([name == outcome.target for name in codes.names], dtype=bool)
    indicator = hit[codes.codes] if codes.names else np.zeros(data.n, dtype=bool)
    return indicator, (everyone if data.mode == "paper" or outcome.over == "all" else known)


def bootstrap_intervals(
    data: CategoryData,
    n_boot: int = N_BOOT,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    metrics: Collection[str] | None = None,
) -> dict[str, Interval]:
    """Percentile bootstrap intervals of every scalar metric (or of ``metrics``), resampling images.

    Seeded, so the same data gives the same intervals. A replicate in which a metric is unavailable
    (e.g. every resampled label unknown) is left out for that metric; a metric available in fewer
    than half of the replicates gets no interval.
    """
    if n_boot < 10:
        raise ValueError(f"`n_boot` must be >= 10, got {n_boot}")
    if data.n == 0:
        return {}
    draws = bootstrap_draws(data, n_boot, seed, metrics)
    alpha = 1 - confidence
    out = {}
    for metric_id, values in draws.items():
        kept = values[np.isfinite(values)]
        if len(kept) >= n_boot / 2:
            low, high = np.quantile(kept, [alpha / 2, 1 - alpha / 2])
            out[metric_id] = Interval(float(low), float(high), "bootstrap", confidence)
    return out


def bootstrap_draws(
    data: CategoryData, n_boot: int, seed: int, metrics: Collection[str] | None = None
) -> dict[str, NDArray[np.float64]]:
    """Every scalar metric's bootstrap replicates (NaN where a replicate has no value)."""
    count_groups: dict[tuple[str, ...], list[tuple[str, MetricDef]]] = {}
    data_metrics: list[tuple[str, MetricDef]] = []
    for metric_id in reported_metrics(data):
        if metrics is not None and metric_id not in metrics:
            continue
        definition = metric_def(metric_id, data.spec)
        assert definition is not None
        if definition.distribution:
            continue
        if definition.counts is not None:
            count_groups.setdefault(reads_of(definition, data.spec), []).append((metric_id, definition))
        elif _has_value(definition, data):  # resampling costs B x n here: not for a metric the data lacks
            data_metrics.append((metric_id, definition))
    out: dict[str, NDArray[np.float64]] = {}
    for reads, members in count_groups.items():
        # metrics that read the same statistics share their replicates
        table = type_table(data, reads)
        stats = stats_of(data, table, multinomial_draws(table.counts, n_boot, seed, ",".join(reads)))
        for metric_id, definition in members:
            assert definition.counts is not None
            try:
                values = definition.counts(stats)
            except MetricUnavailable:
                continue
            assert not isinstance(values, dict)
            out[metric_id] = np.asarray(values, dtype=np.float64)
    if data_metrics:
        out.update(_replicate_by_replicate(data, data_metrics, n_boot, seed))
    return out


def _has_value(definition: MetricDef, data: CategoryData) -> bool:
    try:
        value = definition.fn(data)
    except MetricUnavailable:
        return False
    return isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)


def _replicate_by_replicate(
    data: CategoryData, members: list[tuple[str, MetricDef]], n_boot: int, seed: int
) -> dict[str, NDArray[np.float64]]:
    """Data metrics on resampled images (the same resamples for all of them)."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, data.n, size=(n_boot, data.n))
    values = {metric_id: np.full(n_boot, np.nan) for metric_id, _ in members}
    looped = []
    for metric_id, definition in members:
        if definition.resampled is not None:
            values[metric_id] = definition.resampled(data, index)
        else:
            looped.append((metric_id, definition))
    for b in range(n_boot if looped else 0):
        replicate = data.resample(index[b])
        for metric_id, definition in looped:
            try:
                value = definition.fn(replicate)
            except MetricUnavailable:
                continue
            if isinstance(value, float | int) and not isinstance(value, bool):
                values[metric_id][b] = float(value)
    return values


@dataclass(frozen=True)
class MetricEstimate:
    """A metric's value, its interval (``None`` for distributions and unavailable metrics), and why
    the value is missing when it is."""

    value: float | dict[str, float] | None
    interval: Interval | None = None
    reason: str | None = None

    def describe(self) -> str:
        if self.value is None:
            return f"null ({self.reason})"
        if isinstance(self.value, dict):
            return ", ".join(f"{g} {p:.3f}" for g, p in sorted(self.value.items(), key=lambda kv: -kv[1]))
        if self.interval is None:
            return f"{self.value:.4f}"
        iv = self.interval
        return f"{self.value:.4f} [{iv.low:.4f}, {iv.high:.4f}] ({iv.confidence:.0%} {iv.method})"


def with_intervals(
    data: CategoryData, metrics: CategoryMetrics, seed: int = 0, n_boot: int = N_BOOT
) -> dict[str, MetricEstimate]:
    """Every metric's estimate: Wilson for the mean of a per-image outcome, the seeded bootstrap otherwise."""
    # only metrics with a value get an interval (a resample never has a value its data lacks)
    scalar = [m for m, v in metrics.metrics.items() if isinstance(v, float)]
    boot = bootstrap_intervals(data, n_boot, seed=seed, metrics=scalar) if data.n else {}
    out = {}
    for metric_id, value in metrics.metrics.items():
        interval = None
        if isinstance(value, float):
            definition = metric_def(metric_id, data.spec)
            outcome = definition.outcome if definition is not None else None
            if outcome is not None:
                indicator, over = outcome_indicator(data, outcome)
                total = int(over.sum())
                interval = wilson_interval(int(indicator[over].sum()), total) if total else None
            else:
                interval = boot.get(metric_id)
        out[metric_id] = MetricEstimate(value, interval, metrics.reasons.get(metric_id))
    return out
