"""A candidate run against its approved baseline (or its anchor), metric by metric, with a test of "no change".

Baseline and candidate share seeds, so image i of each forms a pair. A metric that is the mean of a
per-image yes/no outcome (the registry says which) gets the exact McNemar test; every other count metric
a paired permutation test (within-pair swaps, :func:`~pytest_t2ibias.judge.stats.swap_permutation_test`),
exact in level at any n, where a normal approximation of a bootstrap was not. Runs whose images cannot be
paired (other seeds, another n: an anchor approved at a smaller n) but whose per-image labels are stored
get the unpaired permutation test on the pooled images. Only metrics whose inputs a baseline does not
store (captions, embeddings) fall back to a normal test on the two runs' intervals, and say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.judge.stats import (
    Interval,
    PermutationResult,
    TwoSampleStatistic,
    mcnemar_exact,
    pooled_permutation_test,
    swap_permutation_test,
    unpaired_se,
    unpaired_z,
)
from pytest_t2ibias.judge.verdicts import worsening
from pytest_t2ibias.metrics.counts import Stats, TypeTable, pooled_types, stats_of
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.intervals import outcome_indicator
from pytest_t2ibias.metrics.registry import MetricDef, metric_def, reads_of
from pytest_t2ibias.records import ImageRecord

if TYPE_CHECKING:
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

#: Metrics whose value needs captions or embeddings, which baselines do not store: compared on intervals.
UNPAIRABLE = frozenset({"vendi", "vendi_embedding", "clip_score"})
#: Kept for compatibility: the permutation tests choose their own sizes (judge.stats.PERMUTATIONS).
N_PAIRED_BOOT = 1000
_Z90 = NormalDist().inv_cdf(0.9)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The change of one metric against the baseline, with its test."""

    metric: str
    delta: float  # candidate - baseline
    p_value: float
    method: str  # "mcnemar", "paired permutation", "permutation", "unpaired intervals"
    n_pairs: int  # pairs compared (unpaired: the candidate's images)
    interval: Interval | None = None
    discordant: float | None = None  # share of discordant pairs (McNemar)
    se: float | None = None  # spread of the change under no change (permutation) or its standard error
    margin_p: float | None = None  # one-sided p of "worse than the allowed regression" (see with_margin)

    @property
    def paired(self) -> bool:
        return self.method in ("mcnemar", "paired permutation")

    def images_needed(self, alpha: float, power: float = 0.9, allowed: float = 0.0) -> int | None:
        """Images (pairs) at which this change would fail the gate with probability ``power``.

        The gate fails a change whose worsening is beyond ``allowed`` and whose test rejects at ``alpha``
        (the level the run's correction gives this check: alpha over the family's size, Holm's first
        step). With the change's spread at n, ``se * sqrt(n / n')`` at n' images, the chance of both is
        about ``Phi((|d| - allowed) / se') * Phi(|d| / se' - z(1 - alpha / 2))``; the smallest n' where it
        reaches ``power`` is returned (None when there is no change or no spread to scale).
        """
        change = abs(self.delta)
        if change == 0 or not self.se or self.n_pairs == 0 or change <= allowed:
            return None
        z = NormalDist().inv_cdf(1 - alpha / 2)

        def chance(n: float) -> float:
            se = self.se * math.sqrt(self.n_pairs / n)  # type: ignore[operator]
            return NormalDist().cdf((change - allowed) / se) * NormalDist().cdf(change / se - z)

        high = self.n_pairs
        while chance(high) < power:
            high *= 2
            if high > 10**9:
                return None
        low = 1
        while low < high:  # the smallest n' that reaches it
            mid = (low + high) // 2
            low, high = (mid + 1, high) if chance(mid) < power else (low, mid)
        return high


def baseline_records(stored: BaselineRecord) -> dict[int, ImageRecord]:
    """The baseline's per-image labels and presence as records, keyed by seed."""
    return {
        int(seed): ImageRecord(
            image_id=f"baseline-{seed}",
            category=stored.category,
            labels=labels,
            present=stored.present.get(seed, {}),
            seed=int(seed),
        )
        for seed, labels in stored.labels.items()
        if seed.lstrip("-").isdigit()  # images stored by id (no seed) cannot be paired
    }


def stored_records(stored: BaselineRecord) -> list[ImageRecord]:
    """Every image the baseline stored, paired by seed or not."""
    return [
        ImageRecord(
            image_id=f"baseline-{key}",
            category=stored.category,
            labels=labels,
            present=stored.present.get(key, {}),
            seed=int(key) if key.lstrip("-").isdigit() else None,
        )
        for key, labels in stored.labels.items()
    ]


def compare_metric(
    suite: Suite, result: CategoryResult, stored: BaselineRecord, metric_id: str, seed: int = 0
) -> Comparison:
    """Candidate vs. baseline for one metric: paired when the seeds match, unpaired otherwise."""
    value = result.metrics[metric_id].value
    old = stored.metrics[metric_id].value if metric_id in stored.metrics else None
    if not isinstance(value, float | int) or not isinstance(old, float | int):
        raise ValueError(f"`{metric_id}` has no value in the candidate or the baseline")
    delta = float(value) - float(old)
    if metric_id not in UNPAIRABLE and stored.labels:
        base_by_seed = baseline_records(stored)
        pairs = [(base_by_seed[r.seed], r) for r in result.records if r.seed is not None and r.seed in base_by_seed]
        try:
            if pairs and len(pairs) == len(result.records) == len(base_by_seed):
                base = category_data(suite, result.category, [p[0] for p in pairs], result.mode)
                cand = category_data(suite, result.category, [p[1] for p in pairs], result.mode)
                return compare_paired(base, cand, metric_id, delta, seed)
            base = category_data(suite, result.category, stored_records(stored), result.mode)
            cand = result.columns(suite)
            return compare_unpaired(base, cand, metric_id, delta, seed)
        except ValueError:
            pass  # the stored labels do not give the metric (e.g. labels outside the suite)
    return _on_intervals(result, stored, metric_id, delta)


def _on_intervals(result: CategoryResult, stored: BaselineRecord, metric_id: str, delta: float) -> Comparison:
    """The two runs' own (95%) intervals, as independent samples (a normal approximation)."""
    bm = stored.metrics[metric_id]
    base_iv = Interval(bm.low, bm.high, bm.method or "", 0.95) if bm.low is not None and bm.high is not None else None
    cand_iv = result.metrics[metric_id].interval
    return Comparison(
        metric=metric_id,
        delta=delta,
        p_value=unpaired_z(delta, base_iv, cand_iv),
        method="unpaired intervals",
        n_pairs=len(result.records),
        se=unpaired_se(base_iv, cand_iv),
    )


def compare_paired(
    base: CategoryData, cand: CategoryData, metric_id: str, delta: float, seed: int = 0, n_boot: int = N_PAIRED_BOOT
) -> Comparison:
    """The paired test of one metric: image i of ``base`` and image i of ``cand`` form a pair.

    ``delta`` is the change reported (candidate - baseline, as the runs measured it). ``n_boot`` is kept
    for compatibility (the permutation test sizes itself).

    Raises:
        ValueError: the metric is not one of the category's, or not available on the pairs themselves.
    """
    del n_boot
    definition = _definition(base, metric_id)
    n = base.n
    if definition.outcome is not None:
        base_ind, base_over = outcome_indicator(base, definition.outcome)
        cand_ind, cand_over = outcome_indicator(cand, definition.outcome)
        if base_over.all() and cand_over.all():  # then the metric is a plain mean over the pairs
            p, b, c = mcnemar_exact(base_ind.tolist(), cand_ind.tolist())
            return Comparison(
                metric=metric_id,
                delta=float(cand_ind.mean() - base_ind.mean()),
                p_value=p,
                method="mcnemar",
                n_pairs=n,
                discordant=(b + c) / n,
                se=math.sqrt(b + c) / n,  # the change's spread under no change (a swap of each discordant pair)
            )
    if definition.counts is None:
        raise ValueError(f"`{metric_id}` is not a count metric: no permutation test")
    pooled = pooled_types(base, cand, reads_of(definition, base.spec), paired=True)
    assert pooled.pairs is not None
    test = swap_permutation_test(
        _difference(definition, pooled.data, pooled.table), pooled.pairs, len(pooled.table.counts), seed,
        stream=f"swap:{metric_id}",
    )  # fmt: skip
    return _from_test(metric_id, delta, test, "paired permutation", n)


def compare_unpaired(base: CategoryData, cand: CategoryData, metric_id: str, delta: float, seed: int = 0) -> Comparison:
    """The unpaired permutation test of one metric between two runs' images (any sizes).

    Raises:
        ValueError: the metric is not a count metric of the category, or not available on the data.
    """
    definition = _definition(base, metric_id)
    if definition.counts is None:
        raise ValueError(f"`{metric_id}` is not a count metric: no permutation test")
    pooled = pooled_types(base, cand, reads_of(definition, base.spec), paired=False)
    test = pooled_permutation_test(
        _difference(definition, pooled.data, pooled.table), pooled.base, pooled.cand, seed, stream=f"pool:{metric_id}"
    )
    return _from_test(metric_id, delta, test, "permutation", cand.n)


def _definition(data: CategoryData, metric_id: str) -> MetricDef:
    definition = metric_def(metric_id, data.spec)
    if definition is None:
        raise ValueError(f"category {data.name!r} has no metric {metric_id!r}")
    return definition


def _difference(definition: MetricDef, data: CategoryData, table: TypeTable) -> TwoSampleStatistic:
    """candidate - baseline of the metric, for samples given as weights over ``table``'s types."""

    def statistic(base_w: NDArray[np.float64], cand_w: NDArray[np.float64]) -> NDArray[np.float64]:
        cand = _counts_value(definition, stats_of(data, table, cand_w))
        base = _counts_value(definition, stats_of(data, table, base_w))
        return cand - base

    return statistic


def _from_test(metric_id: str, delta: float, test: PermutationResult, method: str, n: int) -> Comparison:
    return Comparison(metric=metric_id, delta=delta, p_value=test.p_value, method=method, n_pairs=n, se=test.se)


def _counts_value(definition: MetricDef, stats: Stats) -> NDArray[np.float64]:
    assert definition.counts is not None
    try:
        values = definition.counts(stats)
    except MetricUnavailable:
        return np.full(stats.samples, np.nan)
    assert not isinstance(values, dict)
    return np.asarray(values, dtype=np.float64)


def with_margin(comparison: Comparison, worse_by: float, allowed: float) -> Comparison:
    """Also require the change to be significantly beyond the allowed regression (intersection-union).

    The paired test says the change is real; this one-sided test says it is larger than the policy
    allows, so a true change inside the margin does not fail a build by noise. The p-value kept is the
    larger of the two, a valid level-alpha test of "a real regression beyond the margin".

    .. math::
        p_{margin} = 1 - \\Phi\\Big(\\frac{w - m}{\\mathrm{SE}}\\Big), \\quad p = \\max(p_{change}, p_{margin})

    with :math:`w` the worsening, :math:`m` the allowed regression and SE the paired standard error.
    """
    se = comparison.se
    if comparison.method == "mcnemar" and comparison.discordant is not None and comparison.n_pairs:
        # Wald SE of a paired difference of shares: sqrt((psi - delta^2) / n)
        se = math.sqrt(max(comparison.discordant - comparison.delta**2, 0.0) / comparison.n_pairs)
    if not se:
        return comparison  # no standard error: the change test alone decides
    p_margin = 1 - NormalDist().cdf((worse_by - allowed) / se)
    return replace(comparison, p_value=max(comparison.p_value, p_margin), margin_p=p_margin)


def comparisons_for(
    suite: Suite,
    result: CategoryResult,
    stored: BaselineRecord,
    rules: Mapping[str, MetricRule],
    margin_test: bool = False,
    cumulative: bool = False,
) -> dict[str, Comparison]:
    """The comparison of every metric with a regression rule (skipping metrics without values); with
    ``margin_test`` each also tests that the worsening exceeds the allowed regression (the cumulative one,
    for ``cumulative``: ``stored`` is the anchor)."""
    out = {}
    for metric_id, rule in rules.items():
        if rule.regression is None or metric_id not in result.metrics or metric_id not in stored.metrics:
            continue
        try:
            comparison = compare_metric(suite, result, stored, metric_id, seed=result.seed)
        except ValueError:
            continue  # no value on one side: judge_regressions reports it as missing
        if not margin_test:
            out[metric_id] = comparison
            continue
        value, old = result.metrics[metric_id].value, stored.metrics[metric_id].value
        assert isinstance(value, float | int) and isinstance(old, float | int)  # compare_metric checked
        worse_by = worsening(metric_id, result.mode, float(value), float(old))
        regression = rule.regression
        allowed = regression.cumulative_allowed(float(old)) if cumulative else regression.allowed(float(old))
        out[metric_id] = with_margin(comparison, worse_by, allowed)
    return out
