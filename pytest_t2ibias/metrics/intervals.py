"""Intervals for metric estimates: exact (Clopper-Pearson) for shares of images, a robust posterior interval
for functions of counts, a seeded bootstrap for the rest.

A bias metric from a few hundred images is an estimate; every gated value carries an interval. Which
interval a metric gets is the registry's call (:attr:`MetricDef.outcome`, :attr:`MetricDef.span`), not a
list kept here; docs/statistics.md says why each one.

A count metric's posterior interval draws image-*type* shares (:mod:`~pytest_t2ibias.metrics.counts`) from
Dirichlet posteriors, all draws at once; a data metric (captions, embeddings, custom metrics) is
bootstrapped replicate by replicate on resampled images.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.binomial import CONFIDENCE as CONFIDENCE
from pytest_t2ibias.metrics.binomial import Interval as Interval
from pytest_t2ibias.metrics.binomial import binomial_tail as binomial_tail
from pytest_t2ibias.metrics.binomial import clopper_pearson_upper as clopper_pearson_upper
from pytest_t2ibias.metrics.binomial import exact_interval as exact_interval
from pytest_t2ibias.metrics.binomial import wilson_interval as wilson_interval
from pytest_t2ibias.metrics.counts import (
    LABELS,
    PRIORS,
    Prior,
    dirichlet_draws,
    multinomial_draws,
    point_stats,
    posterior_table,
    resplit,
    stats_of,
    type_table,
)
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.engine import CategoryMetrics, compute_data, reported_metrics
from pytest_t2ibias.metrics.registry import MetricDef, Outcome, metric_def, on_view, reads_of

#: Bootstrap replicates for metric intervals (seeded: same data, same intervals).
N_BOOT = 1000


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
    data: CategoryData,
    n_boot: int,
    seed: int,
    metrics: Collection[str] | None = None,
    kind: Literal["bootstrap", "posterior"] = "bootstrap",
    prior: Prior = "perks",
) -> dict[str, NDArray[np.float64]]:
    """Every scalar metric's bootstrap replicates (NaN where a replicate has no value).

    With ``kind="posterior"`` a count metric's draws come from the posterior of its image types instead
    (:func:`~pytest_t2ibias.metrics.counts.posterior_table`: the counts plus a Jeffreys prior); data metrics
    are bootstrapped either way.
    """
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
        if kind == "posterior":
            table, alpha = posterior_table(data, reads, prior)
            stream = f"{prior}:{','.join(reads)}"
            stats = stats_of(data, table, dirichlet_draws(alpha, data.n, n_boot, seed, stream))
        else:
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
    values = {metric_id: np.full(n_boot, np.nan) for metric_id, _ in members}
    batched = [(m, d) for m, d in members if d.resampled is not None]
    looped = [(m, d) for m, d in members if d.resampled is None]
    # the (B, n) resample indices in blocks of replicates (the same stream as one draw of all of them):
    # at 1e6 images all of them at once would be 8 GB
    step = max(1, min(n_boot, _INDEX_BLOCK // max(data.n, 1)))
    for start in range(0, n_boot, step):
        index = rng.integers(0, data.n, size=(min(step, n_boot - start), data.n))
        for metric_id, definition in batched:
            assert definition.resampled is not None
            values[metric_id][start : start + len(index)] = definition.resampled(data, index)
        for b in range(len(index) if looped else 0):
            replicate = data.resample(index[b])
            for metric_id, definition in looped:
                try:
                    value = definition.fn(replicate)
                except MetricUnavailable:
                    continue
                if isinstance(value, float | int) and not isinstance(value, bool):
                    values[metric_id][start + b] = float(value)
    return values


#: Resample indices drawn at once (32 MB of int64): bounds the memory of a data metric's bootstrap.
_INDEX_BLOCK = 1 << 22


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
    """Every metric's estimate with its 95 % interval, the kind the registry says:

    * the mean of a per-image outcome: Wilson's score interval;
    * a count metric: a robust posterior interval (:func:`posterior_interval`), which keeps its coverage at
      small n where a bootstrap collapses (no image of a group drawn: every resample lacks it too);
    * a data metric (captions, embeddings): the seeded percentile bootstrap.
    """
    # only metrics with a value get an interval (a resample never has a value its data lacks)
    scalar = [m for m, v in metrics.metrics.items() if isinstance(v, float)]
    counted = []
    for metric_id in scalar:
        definition = metric_def(metric_id, data.spec)
        if definition is not None and definition.counts is not None and definition.outcome is None:
            counted.append(metric_id)
    posterior = posterior_intervals(data, metrics, counted, seed, n_boot) if data.n else {}
    others = [m for m in scalar if m not in counted]
    boot = bootstrap_intervals(data, n_boot, seed=seed, metrics=others) if data.n and others else {}
    out = {}
    for metric_id, value in metrics.metrics.items():
        interval = None
        if isinstance(value, float):
            definition = metric_def(metric_id, data.spec)
            assert definition is not None
            if definition.outcome is not None:
                indicator, over = outcome_indicator(data, definition.outcome)
                total = int(over.sum())
                interval = exact_interval(int(indicator[over].sum()), total) if total else None
            else:
                interval = posterior.get(metric_id) or boot.get(metric_id)
        out[metric_id] = MetricEstimate(value, interval, metrics.reasons.get(metric_id))
    return out


def posterior_intervals(
    data: CategoryData, metrics: CategoryMetrics, metric_ids: Collection[str], seed: int, n_draws: int = N_BOOT
) -> dict[str, Interval]:
    """Robust posterior intervals of count metrics: the union of

    * the equal-tailed 95 % interval of the metric's posterior draws, and its reflection about the point
      value (``2 * value - q``: a convex metric such as bias amplification is biased upwards, its draws
      more so; the reflection covers the bias), each under two priors (Perks' and Jeffreys',
      :func:`~pytest_t2ibias.metrics.counts.posterior_table`), and
    * the metric's posterior interval at a reference distribution the data cannot rule out
      (:func:`plausible_references`), so a truly balanced model, where bias amplification is exactly 0,
      is covered.

    Conservative by design: at small n the shortfall of any one of them is what made gates flaky; at large
    n they agree and the interval is the posterior's.
    """
    if not metric_ids:
        return {}
    draws = {prior: bootstrap_draws(data, n_draws, seed, metrics=metric_ids, kind="posterior", prior=prior)
             for prior in PRIORS}  # fmt: skip
    references = plausible_references(data, seed)
    out = {}
    for metric_id in metric_ids:
        value = metrics.metrics.get(metric_id)
        definition = metric_def(metric_id, data.spec)
        if not isinstance(value, float) or definition is None:
            continue
        bounds: list[float] = []
        for prior in PRIORS:
            kept = draws[prior].get(metric_id)
            kept = kept[np.isfinite(kept)] if kept is not None else None
            if kept is None or len(kept) < n_draws / 2:
                continue
            low, high = np.quantile(kept, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
            bounds += [float(low), float(high), 2 * value - float(high), 2 * value - float(low)]
        if not bounds:
            continue
        interval = Interval(min(bounds), max(bounds), "posterior", CONFIDENCE)
        if LABELS in definition.reads and references:
            interval = _reach_plausible_references(data, definition, interval, seed, references)
        lowest, highest = definition.span  # a reflection can reach past what the metric can take
        out[metric_id] = Interval(max(interval.low, lowest), min(interval.high, highest), "posterior", CONFIDENCE)
    return out


def _reach_plausible_references(
    data: CategoryData, definition: MetricDef, interval: Interval, seed: int, references: list[dict[str, float]]
) -> Interval:
    """Widen a group-share metric's interval to cover its values at a reference distribution the data
    cannot rule out.

    Bias amplification, KL and one minus normalised entropy are 0 at uniform shares and positive anywhere
    else, so any sample puts them above 0 and no equal-tailed interval reaches 0: a model that is truly
    balanced would never be covered. When a goodness-of-fit test does not reject uniform shares (or the
    category's declared ``reference``), the interval is joined with the metric's posterior interval at
    those shares (the other statistics, such as the terms found, as uncertain as they are).
    """
    for shares in references:
        reads = reads_of(definition, data.spec)
        table, alpha = posterior_table(data, reads)
        stats = stats_of(data, table, dirichlet_draws(alpha, data.n, N_BOOT, seed, "reference:" + ",".join(reads)))
        try:
            values = definition.counts(resplit(stats, shares))  # type: ignore[misc]
        except MetricUnavailable:
            continue
        assert not isinstance(values, dict)
        ref = _percentile_interval(np.asarray(values, dtype=np.float64), N_BOOT, interval.method)
        if ref is not None:
            low, high = min(interval.low, ref.low), max(interval.high, ref.high)
            interval = Interval(low, high, interval.method, interval.confidence)
    return interval


def plausible_references(data: CategoryData, seed: int, level: float = 1 - CONFIDENCE) -> list[dict[str, float]]:
    """The reference distributions (uniform over the declared groups, and the category's ``reference``)
    that an exact goodness-of-fit test of the known labels does not reject at ``level`` (strict mode)."""
    # 2,000 draws decide it: a p-value they put under 0.0105 is not above 0.05 once refined
    return [shares for shares, p in reference_fits(data, seed, refine=level < 0.0105) if p > level]


def reference_fits(data: CategoryData, seed: int, refine: bool = True) -> list[tuple[dict[str, float], float]]:
    """Each reference distribution (uniform over the declared groups, and the category's ``reference``)
    with the p-value of an exact goodness-of-fit test of the known labels against it (strict mode).

    The test: the likelihood-ratio statistic of the observed group counts against the reference, its
    null distribution simulated (2,000 multinomial draws at the reference, 100,000 when fewer than 20 of
    them reach the observed statistic and ``refine``), so it holds at any n.
    """
    attribute = data.attribute
    if attribute is None or data.mode != "strict" or len(attribute.groups) < 2 or data.n == 0:
        return []
    groups = list(attribute.groups)
    codes = data.label_codes()
    counts = np.bincount(codes.codes, minlength=len(codes.names)) if codes.names else np.zeros(0, np.int64)
    observed = dict(zip(codes.names, counts.tolist(), strict=True))
    x = np.array([observed.get(g, 0) for g in groups], dtype=np.float64)
    m = int(x.sum())
    if m == 0:
        return []
    candidates = [{g: 1.0 / len(groups) for g in groups}]
    if data.spec.reference:
        candidates.append({g: float(data.spec.reference.get(g, 0.0)) for g in groups})
    rng = np.random.default_rng([seed, 0x9E3779B9])
    out: list[tuple[dict[str, float], float]] = []
    for shares in candidates:
        q = np.array([shares[g] for g in groups])
        if np.any(q <= 0):
            continue
        observed_g = _g_statistic(x[None, :], q)[0] - 1e-9
        null = rng.multinomial(m, q, size=2000).astype(np.float64)
        exceed = int((_g_statistic(null, q) >= observed_g).sum())
        if exceed < 20 and refine:  # a small p-value: a family of 40 bounds at alpha 0.01 needs p < 0.00025, so more
            # draws, from their own stream (the shared one, and every p-value above 0.01, stay as they were)
            more = np.random.default_rng([seed, 0x9E3779B9, len(out)])
            null = more.multinomial(m, q, size=100_000).astype(np.float64)
            exceed = int((_g_statistic(null, q) >= observed_g).sum())
        out.append((shares, (exceed + 1) / (len(null) + 1)))
    return out


def _percentile_interval(values: NDArray[np.float64], n_draws: int, method: str) -> Interval | None:
    kept = values[np.isfinite(values)]
    if len(kept) < n_draws / 2:
        return None
    alpha = 1 - CONFIDENCE
    low, high = np.quantile(kept, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), method, CONFIDENCE)


def _g_statistic(counts: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """2 sum x log(x / (m q)), per row (0 log 0 = 0)."""
    m = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, counts * np.log(counts / (m * q)), 0.0)
    return np.asarray(2 * terms.sum(axis=1), dtype=np.float64)


def bound_p_value(
    data: CategoryData, metric_id: str, bound: float, side: Literal["max", "min"], seed: int = 0
) -> float:
    """One-sided p-value of "the metric is within its bound": small when the data say it is beyond.

    A point value within the bound is no evidence against it: p = 1 (a valid, conservative p-value of a
    one-sided test; it spares the draws of every bound a run is nowhere near). Beyond it:

    * the mean of a per-image outcome: the exact binomial tail at the bound (for a ``max`` bound b and
      x of m images, P(X >= x) with X ~ Bin(m, b));
    * a count metric: the largest posterior probability that the metric is within the bound, over the
      draws the robust interval uses (both priors, and their reflections about the point value; 4,000
      draws, and 100,000 when that probability is small, so a family-wise correction can use it), and
      the goodness-of-fit p-value of a reference distribution at which the metric is within the bound;
    * a data metric: the share of bootstrap replicates within the bound;
    * a metric corrected with a scorer card (``data.scorer_card``): the test on the corrected scale
      (:func:`~pytest_t2ibias.metrics.corrected_draws.corrected_bound_p_value`).

    Raises:
        ValueError: the metric has no value on ``data``.
    """
    data, metric_id = on_view(data, metric_id)  # `fd@ethnicity`: on the view of ethnicity
    definition = metric_def(metric_id, data.spec)
    if definition is None:
        raise ValueError(f"category {data.name!r} has no metric {metric_id!r}")
    if data.scorer_card is not None or data.term_cards is not None:  # corrected with a card: test that value
        from pytest_t2ibias.metrics.corrected_draws import corrected_bound_p_value

        corrected = corrected_bound_p_value(data, metric_id, bound, side, seed)
        if corrected is not None:
            return corrected

    def within(values: NDArray[np.float64]) -> NDArray[np.bool_]:
        return values <= bound if side == "max" else values >= bound

    if definition.outcome is not None:
        indicator, over = outcome_indicator(data, definition.outcome)
        m, x = int(over.sum()), int(indicator[over].sum())
        if m == 0:
            raise ValueError(f"`{metric_id}` has no value")
        return 1.0 if within(np.array([x / m]))[0] else binomial_tail(x, m, bound, upper=side == "max")
    value = compute_data(data, only=[metric_id]).metrics.get(metric_id)
    if not isinstance(value, float):
        raise ValueError(f"`{metric_id}` has no value")
    if within(np.array([value]))[0]:
        return 1.0

    kind: Literal["bootstrap", "posterior"] = "posterior" if definition.counts is not None else "bootstrap"
    p = 0.0
    for prior in PRIORS if kind == "posterior" else ("perks",):
        for n_draws in (4000, 100_000):
            drawn = bootstrap_draws(data, n_draws, seed, metrics=[metric_id], kind=kind, prior=prior).get(metric_id)
            kept = drawn[np.isfinite(drawn)] if drawn is not None else np.zeros(0)
            if len(kept) < n_draws / 2:
                raise ValueError(f"`{metric_id}` has no value in most draws")
            count = max(int(within(kept).sum()), int(within(2 * value - kept).sum()) if kind == "posterior" else 0)
            if count >= 20 or n_draws == 100_000:
                p = max(p, (count + 1) / (len(kept) + 1))
                break
    if kind == "posterior" and LABELS in definition.reads:
        for shares, fit in reference_fits(data, seed):
            try:
                at = definition.counts(resplit(point_stats(data), shares))  # type: ignore[misc]
            except MetricUnavailable:
                continue
            if not isinstance(at, dict) and bool(within(np.asarray(at, dtype=np.float64))[0]):
                p = max(p, fit)
    return min(1.0, p)
