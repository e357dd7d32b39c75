"""Paired comparison of a candidate run against its approved baseline, image by image.

Baseline and candidate share seeds, so image i of each forms a pair. A metric that is the mean of a
per-image yes/no outcome (the registry says which) gets the exact McNemar test; other count metrics the
paired bootstrap over kinds of pairs (pairs with the same baseline and candidate statistics are
exchangeable); data metrics the paired bootstrap over single pairs. When pairs cannot be formed (an
older baseline without per-image labels, or other seeds) the comparison falls back to an unpaired test
and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.judge.stats import (
    Interval,
    images_for_power,
    mcnemar_exact,
    paired_bootstrap_draws,
    se_p_value,
    unpaired_se,
    unpaired_z,
)
from pytest_t2ibias.judge.verdicts import worsening
from pytest_t2ibias.metrics.counts import paired_type_tables, stats_of
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

#: Metrics whose value needs captions or embeddings, which baselines do not store: compared unpaired.
UNPAIRABLE = frozenset({"vendi", "vendi_embedding", "clip_score"})
#: Bootstrap replicates for paired differences.
N_PAIRED_BOOT = 1000


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The change of one metric against the baseline, with its test."""

    metric: str
    delta: float  # candidate - baseline
    p_value: float
    method: str  # "mcnemar", "paired bootstrap", "unpaired"
    n_pairs: int  # pairs compared (for an unpaired comparison: the candidate's images)
    interval: Interval | None = None
    discordant: float | None = None  # share of discordant pairs (McNemar), for the power calculation
    se: float | None = None  # standard error of the difference (bootstrap / unpaired)
    margin_p: float | None = None  # one-sided p of "worse than the allowed regression" (see with_margin)

    @property
    def paired(self) -> bool:
        return self.method != "unpaired"

    def images_needed(self, alpha: float, power: float = 0.9) -> int | None:
        """Images (pairs) a test at ``alpha`` needs to detect a change of this size with ``power``."""
        if self.delta == 0:
            return None
        if self.method == "mcnemar" and self.discordant is not None:
            return images_for_power(self.delta, self.discordant, alpha, power)
        if self.se is None or self.se == 0 or self.n_pairs == 0:
            return None
        z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
        return math.ceil(self.n_pairs * (z * self.se / abs(self.delta)) ** 2)


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


def compare_metric(
    suite: Suite, result: CategoryResult, stored: BaselineRecord, metric_id: str, seed: int = 0
) -> Comparison:
    """Candidate vs. baseline for one metric: paired when the seeds match, unpaired otherwise."""
    value = result.metrics[metric_id].value
    old = stored.metrics[metric_id].value if metric_id in stored.metrics else None
    if not isinstance(value, float | int) or not isinstance(old, float | int):
        raise ValueError(f"`{metric_id}` has no value in the candidate or the baseline")
    delta = float(value) - float(old)
    base_by_seed = baseline_records(stored)
    pairs = [(base_by_seed[r.seed], r) for r in result.records if r.seed is not None and r.seed in base_by_seed]
    pairable = metric_id not in UNPAIRABLE and pairs and len(pairs) == len(result.records) == len(base_by_seed)
    if pairable:
        try:
            return _paired(suite, result, pairs, metric_id, delta, seed)
        except ValueError:
            pass  # the stored labels do not give the metric (e.g. labels outside the suite): compare unpaired
    return _unpaired(result, stored, metric_id, delta)


def _unpaired(result: CategoryResult, stored: BaselineRecord, metric_id: str, delta: float) -> Comparison:
    """The two runs' own (95%) intervals, as independent samples."""
    bm = stored.metrics[metric_id]
    base_iv = Interval(bm.low, bm.high, bm.method or "", 0.95) if bm.low is not None and bm.high is not None else None
    cand_iv = result.metrics[metric_id].interval
    return Comparison(
        metric=metric_id,
        delta=delta,
        p_value=unpaired_z(delta, base_iv, cand_iv),
        method="unpaired",
        n_pairs=len(result.records),
        se=unpaired_se(base_iv, cand_iv),
    )


def _paired(
    suite: Suite,
    result: CategoryResult,
    pairs: list[tuple[ImageRecord, ImageRecord]],
    metric_id: str,
    delta: float,
    seed: int,
) -> Comparison:
    base = category_data(suite, result.category, [p[0] for p in pairs], result.mode)
    cand = category_data(suite, result.category, [p[1] for p in pairs], result.mode)
    return compare_paired(base, cand, metric_id, delta, seed)


def compare_paired(
    base: CategoryData, cand: CategoryData, metric_id: str, delta: float, seed: int = 0, n_boot: int = N_PAIRED_BOOT
) -> Comparison:
    """The paired test of one metric: image i of ``base`` and image i of ``cand`` form a pair.

    ``delta`` is the change reported (candidate - baseline, as the runs measured it); ``n_boot`` the
    bootstrap replicates of a metric that is not a per-image outcome.

    Raises:
        ValueError: the metric is not one of the category's, or not available on the pairs themselves.
    """
    definition = metric_def(metric_id, base.spec)
    if definition is None:
        raise ValueError(f"category {base.name!r} has no metric {metric_id!r}")
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
            )
    if definition.counts is not None:
        base_table, cand_table = paired_type_tables(base, cand, reads_of(definition, base.spec))
        units: NDArray[np.float64] | int = base_table.counts.astype(np.float64)

        def statistic(weights: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            return (
                _counts_value(definition, stats_of(base, base_table, weights)),
                _counts_value(definition, stats_of(cand, cand_table, weights)),
            )

    else:
        units = n

        def statistic(weights: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            return _replicates(definition, base, weights), _replicates(definition, cand, weights)

    observed, draws = paired_bootstrap_draws(statistic, units, n_boot, seed=seed, stream=f"paired:{metric_id}")
    low, high = np.quantile(draws, [0.025, 0.975])
    return Comparison(
        metric=metric_id,
        delta=delta,
        p_value=se_p_value(observed, draws),
        method="paired bootstrap",
        n_pairs=n,
        interval=Interval(float(low), float(high), "paired bootstrap", 0.95),
        se=float(draws.std(ddof=1)),
    )


def _point(definition: MetricDef, data: CategoryData) -> float:
    try:
        value = definition.fn(data)
    except MetricUnavailable:
        return math.nan
    return float(value) if isinstance(value, float | int) else math.nan


def _counts_value(definition: MetricDef, stats: object) -> NDArray[np.float64]:
    assert definition.counts is not None
    try:
        values = definition.counts(stats)  # type: ignore[arg-type]
    except MetricUnavailable:
        return np.full(stats.samples, np.nan)  # type: ignore[attr-defined]
    assert not isinstance(values, dict)
    return np.asarray(values, dtype=np.float64)


def _replicates(definition: MetricDef, data: CategoryData, weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """A data metric on each row of resampling multiplicities (replicate by replicate)."""
    out = np.full(weights.shape[0], np.nan)
    for b, row in enumerate(weights):
        out[b] = _point(definition, data.resample(np.repeat(np.arange(data.n), row.astype(np.intp))))
    return out


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
    rules: dict[str, MetricRule],
    margin_test: bool = False,
) -> dict[str, Comparison]:
    """The paired comparison of every metric with a regression rule (skipping metrics without values);
    with ``margin_test`` each also tests that the worsening exceeds the allowed regression."""
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
        out[metric_id] = with_margin(comparison, worse_by, rule.regression.allowed(float(old)))
    return out
