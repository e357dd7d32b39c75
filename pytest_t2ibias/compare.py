"""Paired comparison of a candidate run against its approved baseline, image by image.

Baseline and candidate share seeds, so image i of each forms a pair. Per-image binary outcomes
(unknown or not, unexpected content or not, one group or not) get the exact McNemar test; other metrics
the paired bootstrap over image pairs. When pairs cannot be formed (an older baseline without
per-image labels, or other seeds) the comparison falls back to an unpaired test and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.engine import category_data, compute_data
from pytest_t2ibias.metrics.registry import CategoryData
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.stats import (
    Interval,
    images_for_power,
    mcnemar_exact,
    paired_bootstrap_draws,
    se_p_value,
    unpaired_se,
    unpaired_z,
)

if TYPE_CHECKING:
    from pytest_t2ibias.baseline import BaselineRecord
    from pytest_t2ibias.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

#: Metrics whose value needs captions or embeddings, which baselines do not store: compared unpaired.
UNPAIRABLE = frozenset({"vendi", "vendi_embedding", "clip_score"})
#: Bootstrap replicates for paired differences.
N_PAIRED_BOOT = 1000


@dataclass(frozen=True)
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


def _indicator(data: CategoryData, metric_id: str) -> NDArray[np.bool_] | None:
    """The per-image binary outcome whose mean is the metric, when there is one."""
    spec = data.spec
    if metric_id == "unknown_rate" and data.attribute is not None:
        return np.array([not data.is_known(label) for label in data.labels])
    lists = {"hallucination": "unexpected", "car": "cultural_markers"}
    if metric_id in lists:
        return np.asarray(data.present[lists[metric_id]].any(axis=1), dtype=bool)
    if metric_id.endswith("_ratio") and metric_id[: -len("_ratio")] in spec.context:
        return np.asarray(data.present[metric_id[: -len("_ratio")]].any(axis=1), dtype=bool)
    if metric_id in spec.shares and data.attribute is not None:
        known = np.array([data.is_known(label) for label in data.labels])
        if data.mode == "paper" or known.all():  # then the share is a plain mean over images
            return np.array([label == spec.shares[metric_id] for label in data.labels])
    return None


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
    p = unpaired_z(delta, base_iv, cand_iv)
    se = unpaired_se(base_iv, cand_iv)
    return Comparison(metric_id, delta, p, "unpaired", len(result.records), None, None, se)


def _paired(
    suite: Suite,
    result: CategoryResult,
    pairs: list[tuple[ImageRecord, ImageRecord]],
    metric_id: str,
    delta: float,
    seed: int,
) -> Comparison:
    mode = result.mode
    base_data = category_data(suite, result.category, [p[0] for p in pairs], mode)
    cand_data = category_data(suite, result.category, [p[1] for p in pairs], mode)
    n = len(pairs)
    base_ind, cand_ind = _indicator(base_data, metric_id), _indicator(cand_data, metric_id)
    if base_ind is not None and cand_ind is not None:
        p, b, c = mcnemar_exact(base_ind.tolist(), cand_ind.tolist())
        delta_pairs = float(cand_ind.mean() - base_ind.mean())
        return Comparison(metric_id, delta_pairs, p, "mcnemar", n, None, (b + c) / n)

    def statistic(index: NDArray[np.intp]) -> tuple[float, float]:
        out = []
        for data in (base_data, cand_data):
            v = compute_data(data.resample(index), only=[metric_id]).metrics.get(metric_id)
            out.append(float(v) if isinstance(v, float | int) else math.nan)
        return out[0], out[1]

    observed, draws = paired_bootstrap_draws(statistic, n, N_PAIRED_BOOT, seed=seed)
    low, high = np.quantile(draws, [0.025, 0.975])
    interval = Interval(float(low), float(high), "paired bootstrap", 0.95)
    se = float(draws.std(ddof=1))
    return Comparison(metric_id, delta, se_p_value(observed, draws), "paired bootstrap", n, interval, None, se)


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
