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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from pytest_t2ibias.judge.stats import (
    Interval,
    PermutationResult,
    TwoSampleStatistic,
    clopper_pearson_upper,
    mcnemar_exact,
    paired_difference_upper,
    pooled_permutation_test,
    sign_test_greater,
    swap_permutation_test,
    unpaired_se,
    unpaired_z,
)
from pytest_t2ibias.metrics.counts import (
    PooledTypes,
    TypeTable,
    dirichlet_draws,
    image_features,
    pooled_types,
    posterior_table,
)
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.intervals import outcome_indicator
from pytest_t2ibias.metrics.registry import (
    METRICS,
    MetricDef,
    direction_of,
    metric_def,
    on_view,
    reads_of,
    worsening_by,
)
from pytest_t2ibias.records import ImageRecord

if TYPE_CHECKING:
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

#: Kept for compatibility: the permutation tests choose their own sizes (judge.stats.PERMUTATIONS).
N_PAIRED_BOOT = 1000
_Z90 = float(ndtri(0.9))


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
    #: one-sided 95 % upper bound of the worsening (how much worse the candidate may truly be); a pass
    #: needs it within the policy's evidence x the allowance (see :func:`worsening_upper`)
    upper: float | None = None
    #: the test is of "worse" only (a metric with a better direction); otherwise of any change
    one_sided: bool = True

    @property
    def paired(self) -> bool:
        return self.method in ("mcnemar", "paired permutation")

    def images_needed(
        self, alpha: float, power: float = 0.9, allowed: float = 0.0, worse: float | None = None
    ) -> int | None:
        """Images (pairs) at which this change would fail the gate with probability ``power``.

        The gate fails a change whose worsening is beyond ``allowed`` and whose test rejects at ``alpha``
        (the level the run's correction gives this check: alpha over the family's size, Holm's first
        step). Both are events of the one measured change d, so together they are d > max(allowed, z SE0),
        with z the test's critical value (one- or two-sided) and SE0 the change's spread under no change
        (``se``); d itself spreads by SE1 about the true worsening w (``worse``, default the size of the
        change): for McNemar the Wald spread sqrt((psi - delta^2) / n), psi the discordant share; for a
        paired permutation test likewise sqrt(SE0^2 - delta^2 / n) (SE0^2 = sum d_i^2 / n^2 over the pairs'
        changes; at least SE0 / 2); else SE0.
        Both spreads scale as sqrt(n / n') at n' images, so the chance is
        ``Phi((w - max(allowed, z SE0')) / SE1')``; the smallest n' where it reaches ``power`` is returned
        (None when there is no worsening or no spread to scale).
        """
        change = abs(self.delta) if worse is None else worse  # the gate weighs the worsening against allowed
        if change <= 0 or not self.se or self.n_pairs == 0 or change <= allowed:
            return None
        z = float(ndtri(1 - alpha if self.one_sided else 1 - alpha / 2))
        null_se = self.se
        spread = null_se
        if self.method == "mcnemar" and self.discordant is not None:
            spread = math.sqrt(max(self.discordant - self.delta**2, 0.0) / self.n_pairs) or null_se
        elif self.paired:
            # a swap test's spread is sqrt(sum d_i^2) / n over the pairs' changes d_i; about their mean,
            # the change's own spread under the alternative, sqrt(sum (d_i - delta)^2) / n: the McNemar
            # Wald spread for any (near-)linear metric, shares over the labelled images included
            spread = math.sqrt(max(null_se**2 - self.delta**2 / self.n_pairs, 0.25 * null_se**2))

        if SELECTION_CORRECTED and worse is not None and allowed < change < z * null_se:
            change = _selected_change(change, allowed, z * null_se, spread)

        def chance(n: float) -> float:
            scale = math.sqrt(self.n_pairs / n)
            return float(ndtr((change - max(allowed, z * null_se * scale)) / (spread * scale)))

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


#: Whether the advice corrects the measured change for the selection of the runs that get advice.
SELECTION_CORRECTED = True


def _selected_change(d: float, low: float, high: float, spread: float) -> float:
    """The worsening w that makes the measured change ``d`` the median of the changes a run can show when it
    gets advice: beyond the allowance ``low`` and short of significance ``high`` (a truncated normal about
    w with sd ``spread``). Advice is given only in runs whose change fell in that window, so the change
    they measured is biased toward it; its conditional median-unbiased estimate (selective inference;
    hand-written: scipy has no truncated-normal location estimator) is not.
    """

    def median_gap(w: float) -> float:
        lo, hi = ndtr((low - w) / spread), ndtr((high - w) / spread)
        if hi - lo < 1e-12:
            return -0.5 if w > high else 0.5
        return float((ndtr((d - w) / spread) - lo) / (hi - lo)) - 0.5

    a, b = d - 6 * spread, high + 6 * spread  # median_gap falls from +0.5 to -0.5 over w
    for _ in range(60):
        mid = (a + b) / 2
        a, b = (mid, b) if median_gap(mid) > 0 else (a, mid)
    return max(d, (a + b) / 2)


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
    comparison = _compare_labels(suite, result, stored, metric_id, delta, seed)
    if comparison.method == "unpaired intervals":  # the runs' own intervals: already on the corrected scale
        return comparison
    return _on_corrected_scale(result, metric_id, comparison)


def _compare_labels(
    suite: Suite, result: CategoryResult, stored: BaselineRecord, metric_id: str, delta: float, seed: int
) -> Comparison:
    definition = METRICS.get(metric_id)  # a group share or a context ratio is a pairable count metric
    if (definition is None or definition.pairable) and stored.labels:
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


def _on_corrected_scale(result: CategoryResult, metric_id: str, comparison: Comparison) -> Comparison:
    """A comparison of a metric corrected with a scorer card, its spread and upper bound stretched to the
    corrected scale.

    The test itself runs on the labels (the same scorer on both sides: no true change, no change in the
    labels' distribution, so its level holds). But the evidence a pass needs (the upper bound of the
    worsening) and the images a settled verdict needs are about the corrected values, which the card
    stretches: a change of the observed shares becomes a larger change of the corrected ones
    (:func:`~pytest_t2ibias.metrics.misclassification.correction_gain`).
    """
    if result.data is None:
        return comparison
    data, on = on_view(result.data, metric_id)  # `fd@ethnicity`: the card's entry for ethnicity
    if data.scorer_card is None:
        return comparison
    from pytest_t2ibias.metrics.corrected_draws import label_metrics
    from pytest_t2ibias.metrics.misclassification import correction_gain, misclassification_matrix

    if not label_metrics(data, [on]):
        return comparison
    gain = correction_gain(misclassification_matrix(data.scorer_card.matrix())[1])
    return replace(
        comparison,
        upper=None if comparison.upper is None else comparison.upper * gain,
        se=None if comparison.se is None else comparison.se * gain,
    )


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
    """The paired test of one metric: image i of ``base`` and image i of ``cand`` form a pair (a metric of
    another attribute, ``fd@ethnicity``, on both runs' views of it).

    ``delta`` is the change reported (candidate - baseline, as the runs measured it). ``n_boot`` is kept
    for compatibility (the permutation test sizes itself).

    Raises:
        ValueError: the metric is not one of the category's, or not available on the pairs themselves.
    """
    del n_boot
    base_view, on = on_view(base, metric_id)
    if on != metric_id:
        comparison = compare_paired(base_view, on_view(cand, metric_id)[0], on, delta, seed)
        return replace(comparison, metric=metric_id)
    definition = _definition(base, metric_id)
    n = base.n
    if definition.outcome is not None:
        base_ind, base_over = outcome_indicator(base, definition.outcome)
        cand_ind, cand_over = outcome_indicator(cand, definition.outcome)
        if base_over.all() and cand_over.all():  # then the metric is a plain mean over the pairs
            p, b, c = mcnemar_exact(base_ind.tolist(), cand_ind.tolist())
            way = definition.direction(base.mode)
            if way in ("lower", "higher"):  # one way is worse: the one-sided test of "worse"
                worse, better = (c, b) if way == "lower" else (b, c)
                p = sign_test_greater(worse, better)
            # the score bound of the worsening (b: pairs that turned no, c: that turned yes); for a share
            # that changes either way, the larger of the bounds of each way (each a 95 % bound of its sign)
            ways = [(c, b)] if way == "lower" else [(b, c)] if way == "higher" else [(c, b), (b, c)]
            smooth = max(paired_difference_upper(up, down, n, _Z95) for up, down in ways)
            return Comparison(
                metric=metric_id,
                delta=float(cand_ind.mean() - base_ind.mean()),
                p_value=p,
                method="mcnemar",
                n_pairs=n,
                discordant=(b + c) / n,
                se=math.sqrt(b + c) / n,  # the change's spread under no change (a swap of each discordant pair)
                upper=_paired_upper(
                    base, cand, metric_id, definition, delta, math.sqrt(b + c) / n, seed=seed, smooth=smooth
                ),
                one_sided=way in ("lower", "higher"),
            )
    if definition.counts is None:
        raise ValueError(f"`{metric_id}` is not a count metric: no permutation test")
    pooled = pooled_types(base, cand, reads_of(definition, base.spec), paired=True)
    assert pooled.pairs is not None
    test = swap_permutation_test(
        _worsening(definition, metric_id, pooled.data, pooled.table), pooled.pairs, len(pooled.table.counts), seed,
        stream=f"swap:{metric_id}", alternative="greater",
    )  # fmt: skip
    upper = _paired_upper(base, cand, metric_id, definition, delta, test.se, pooled, seed)
    return replace(_from_test(metric_id, delta, test, "paired permutation", n), upper=upper,
                   one_sided=definition.direction(base.mode) != "even")  # fmt: skip


def compare_unpaired(base: CategoryData, cand: CategoryData, metric_id: str, delta: float, seed: int = 0) -> Comparison:
    """The unpaired permutation test of one metric between two runs' images (any sizes).

    Raises:
        ValueError: the metric is not a count metric of the category, or not available on the data.
    """
    base_view, on = on_view(base, metric_id)
    if on != metric_id:  # a metric of another attribute: on both runs' views of it
        comparison = compare_unpaired(base_view, on_view(cand, metric_id)[0], on, delta, seed)
        return replace(comparison, metric=metric_id)
    definition = _definition(base, metric_id)
    if definition.counts is None:
        raise ValueError(f"`{metric_id}` is not a count metric: no permutation test")
    pooled = pooled_types(base, cand, reads_of(definition, base.spec), paired=False)
    test = pooled_permutation_test(
        _worsening(definition, metric_id, pooled.data, pooled.table), pooled.base, pooled.cand, seed,
        stream=f"pool:{metric_id}", alternative="greater",
    )  # fmt: skip
    upper = definition.worsening(base.mode, _value(definition, cand), _value(definition, base)) + _Z95 * test.se
    fold = _fold(base, cand, metric_id, definition, pooled, seed, level=_FOLD_LEVEL)
    if fold is not None:  # the smaller of two 97.5 % bounds: a 95 % bound (see _paired_upper)
        spread = pooled_permutation_test(fold.contrast, pooled.base, pooled.cand, seed, stream=f"fold:{metric_id}").se
        upper = max(upper, min(fold.change + _Z_FOLD * spread, fold.apart))
    return replace(_from_test(metric_id, delta, test, "permutation", cand.n), upper=upper,
                   one_sided=definition.direction(base.mode) != "even")  # fmt: skip


#: One-sided 95 % normal quantile.
_Z95 = float(ndtri(0.95))
#: Each of the two bounds of a folded metric's worsening (the size of the change, the runs' posterior
#: bounds apart) is a one-sided 97.5 % bound, so that the smaller of the two is a 95 % bound:
#: P(truth > min(a, b)) <= P(truth > a) + P(truth > b) = 2.5 % + 2.5 %.
_FOLD_LEVEL = 0.975
_Z_FOLD = float(ndtri(_FOLD_LEVEL))
#: Most images the search for the worst unseen change moves (beyond it the normal term dominates).
_MAX_UNSEEN = 200


def _paired_upper(
    base: CategoryData,
    cand: CategoryData,
    metric_id: str,
    definition: MetricDef,
    delta: float,
    se: float,
    pooled: PooledTypes | None = None,
    seed: int = 0,
    smooth: float | None = None,
) -> float:
    """One-sided 95 % upper bound of the worsening of paired runs: the larger of

    * the worsening plus 1.645 times the change's spread (w + 1.645 SE; ``smooth`` instead where given:
      McNemar's score bound), and
    * the worsening if the images that may have changed unseen did, the worst way: with D of n pairs seen
      to differ, the exact (Clopper-Pearson) 95 % upper bound on the share of changed pairs allows
      ``ceil(n * bound) - D`` more; they are moved one at a time to the type that worsens the metric most;
    * for a metric folded at its target (:func:`_fold`) whose side of the target the data cannot tell, the
      same two bounds of the size of the change itself (the triangle inequality: |c| - |b| <= |c - b|),
      or, if smaller, the runs' own posterior bounds apart (``Fold.apart``). Each of these two is a
      97.5 % bound (z = 1.96 for the change's spread; posterior quantiles at 97.5 %, split between the
      runs where both enter), so their minimum is a 95 % bound (Bonferroni), where the minimum of two
      95 % bounds could miss up to 10 %. The unseen-change term of the size of the change keeps its 95 %
      Clopper-Pearson count (the larger of two bounds is as valid as its better part; with a 97.5 % count an
      unchanged model, n = 200, 20 % re-drawn, passed parity in 72 % of runs, with 95 % in 82 %).

    The second term is what makes small n honest: 15 pairs that all agree do not show that a change in
    15 % of images is absent (0.85^15 = 9 % of such runs see none), so they cannot pass a 15-point
    regression. The third keeps a fold from hiding a change: at 15 images a baseline measured at parity
    -0.2 (truly 0) and a candidate at +0.1 look "closer to parity", though the model moved 0.3.
    """
    mode = base.mode
    value_b = _value(definition, base)
    worse = definition.worsening(mode, _value(definition, cand), value_b)
    bound = worse + _Z95 * se if smooth is None else max(smooth, worse)
    n = base.n
    changed = int(np.count_nonzero(np.any(_pair_types(base, cand, definition), axis=1))) if n else 0
    unseen = min(math.ceil(n * clopper_pearson_upper(changed, n) - changed - 1e-9), _MAX_UNSEEN) if n else 0
    features = reads_of(definition, base.spec)
    if unseen > 0 or definition.folded(mode):
        pooled = pooled or pooled_types(base, cand, features, paired=True)
    if unseen > 0:
        assert pooled is not None

        def worse_of(data: CategoryData, table: TypeTable, counts: NDArray[np.float64]) -> NDArray[np.float64]:
            return definition.worsening(mode, definition.statistic_on(data, table, counts), value_b)

        bound = max(bound, _unseen_worst(pooled, features, unseen, worse_of, worse))
    fold = _fold(base, cand, metric_id, definition, pooled, seed, level=_FOLD_LEVEL) if pooled is not None else None
    if fold is not None:
        assert pooled is not None and pooled.pairs is not None
        spread = swap_permutation_test(fold.contrast, pooled.pairs, len(pooled.table.counts), seed,
                                       stream=f"fold:{metric_id}").se  # fmt: skip
        of_change = fold.change + _Z_FOLD * spread
        if unseen > 0:
            parts_b = fold.base_parts

            def change_of(data: CategoryData, table: TypeTable, counts: NDArray[np.float64]) -> NDArray[np.float64]:
                parts = definition.parts_on(data, table, counts)
                assert parts is not None
                return np.asarray(np.abs(parts - parts_b).sum(axis=1), dtype=np.float64)

            of_change = max(of_change, _unseen_worst(pooled, features, unseen, change_of, fold.change))
        bound = max(bound, min(of_change, fold.apart))
    return bound


def _unseen_worst(
    pooled: PooledTypes,
    features: tuple[str, ...],
    unseen: int,
    worse_of: Callable[[CategoryData, TypeTable, NDArray[np.float64]], NDArray[np.float64]],
    worse: float,
) -> float:
    """The worsening (``worse_of``, per sample of candidate counts over a table's types) after ``unseen`` more of the
    candidate's images change type, one at a time, each the way that worsens it most."""
    table, _ = posterior_table(pooled.data, features)
    k0, k = len(pooled.table.counts), len(table.counts)
    counts = np.zeros(k)
    counts[:k0] = pooled.cand
    origin = np.repeat(np.arange(k), k)
    target = np.tile(np.arange(k), k)
    keep = origin != target
    origin, target = origin[keep], target[keep]
    for _ in range(unseen):
        moves = np.repeat(counts[None, :], len(origin), axis=0)
        movable = moves[np.arange(len(origin)), origin] >= 1
        moves[np.arange(len(origin)), origin] -= 1
        moves[np.arange(len(origin)), target] += 1
        worse_moved = np.where(movable, worse_of(pooled.data, table, moves), -np.inf)
        worse_moved = np.where(np.isfinite(worse_moved), worse_moved, -np.inf)
        best = int(np.argmax(worse_moved))
        if not np.isfinite(worse_moved[best]):
            break
        counts = moves[best]
        worse = max(worse, float(worse_moved[best]))
    return worse


#: Posterior draws that decide whether the data can tell on which side of its target a metric lies.
_FOLD_DRAWS = 1000
#: The posterior interval of a signed part that decides whether the fold is in reach: where a run's
#: interval misses the target although the truth is on it, the worsening |c| - |b| is taken as smooth and
#: understated, so this miss (1 - _REACH) adds to the bound's own; 99 % keeps it to 1 %.
_REACH = 0.99


@dataclass(frozen=True)
class Fold:
    """A folded metric's change where the fold is in reach (see :func:`_fold`)."""

    #: the signed change along the observed direction, sum s_i (c_i - b_i): its permutation spread is the
    #: spread of the size of the change
    contrast: TwoSampleStatistic
    #: the size of the change, sum |c_i - b_i| over the signed parts: |c| - |b| <= |c - b| bounds the
    #: worsening wherever the truth lies
    change: float
    #: the runs' own posterior bounds apart: the candidate's upper bound of the metric minus the baseline's
    #: lower bound (0 where its interval holds the target), together a one-sided bound at the level
    #: :func:`_fold` was asked for (split between the two runs where both enter): tighter than the size of the
    #: change when the images are not paired, where the change is measured with both runs' noise
    apart: float
    #: the baseline's signed parts (1, parts)
    base_parts: NDArray[np.float64]


def _fold(
    base: CategoryData,
    cand: CategoryData,
    metric_id: str,
    definition: MetricDef,
    pooled: PooledTypes,
    seed: int,
    level: float = 0.95,
) -> Fold | None:
    """For a metric folded at its target, where either run's 99 % posterior interval of a signed part holds
    the target (so the data cannot tell on which side it lies), the bounds the worsening needs there
    (:class:`Fold`, ``apart`` a one-sided ``level`` bound); None otherwise (the fold is out of reach and the
    worsening is smooth)."""
    if not definition.folded(base.mode):
        return None
    data, table = pooled.data, pooled.table
    parts_b = definition.parts_on(data, table, pooled.base.astype(np.float64))
    parts_c = definition.parts_on(data, table, pooled.cand.astype(np.float64))
    if parts_b is None or parts_c is None or not np.all(np.isfinite(parts_b)) or not np.all(np.isfinite(parts_c)):
        return None
    side_b = _side(base, metric_id, definition, seed)
    side_c = _side(cand, metric_id, definition, seed, level)
    if not (side_b.holds_target or side_c.holds_target):
        return None
    if not side_b.holds_target:  # both runs' bounds enter ``apart``: the level split between them
        side_b = _side(base, metric_id, definition, seed, (1 + level) / 2)
        side_c = _side(cand, metric_id, definition, seed, (1 + level) / 2)
    signs = np.where(parts_c[0] >= parts_b[0], 1.0, -1.0)

    def contrast(base_w: NDArray[np.float64], cand_w: NDArray[np.float64]) -> NDArray[np.float64]:
        pc = definition.parts_on(data, table, cand_w)
        pb = definition.parts_on(data, table, base_w)
        if pc is None or pb is None:
            return np.full(len(base_w), np.nan)
        return np.asarray(((pc - pb) * signs).sum(axis=1), dtype=np.float64)

    change = float(np.abs(parts_c[0] - parts_b[0]).sum())
    apart = side_c.high - (0.0 if side_b.holds_target else side_b.low)
    return Fold(contrast, change, apart, parts_b)


@dataclass(frozen=True)
class _Side:
    holds_target: bool  # the 99 % posterior interval (_REACH) of one of the signed parts holds 0
    low: float  # one-sided ``level`` posterior bounds of the folded metric (sum of |parts|)
    high: float


def _side(data: CategoryData, metric_id: str, definition: MetricDef, seed: int, level: float = 0.95) -> _Side:
    """One run's posterior (Jeffreys) of a folded metric's signed parts: does the data tell on which side
    of the target it lies (its 99 % interval, ``_REACH``), and how far from it may it be (one-sided
    ``level`` bounds)?"""
    features = reads_of(definition, data.spec)
    table, alpha = posterior_table(data, features, prior="jeffreys")
    draws = dirichlet_draws(alpha, data.n, _FOLD_DRAWS, seed, f"fold:{metric_id}")
    parts = definition.parts_on(data, table, draws)
    if parts is None:
        return _Side(True, 0.0, math.inf)  # no posterior of the parts: nothing is known
    with np.errstate(invalid="ignore"):
        low, high = np.nanquantile(parts, [(1 - _REACH) / 2, (1 + _REACH) / 2], axis=0)
        size_low, size_high = np.nanquantile(np.abs(parts).sum(axis=1), [1 - level, level])
    return _Side(bool(np.any((low <= 0) & (high >= 0))), float(size_low), float(size_high))


def _pair_types(base: CategoryData, cand: CategoryData, definition: MetricDef) -> NDArray[np.bool_]:
    """Per pair and feature the metric reads: do the two images differ?"""
    features = reads_of(definition, base.spec)
    if not features:
        return np.zeros((base.n, 1), dtype=bool)
    return np.stack([image_features(base, f) != image_features(cand, f) for f in features], axis=1)


def _value(definition: MetricDef, data: CategoryData) -> float:
    value = definition.fn(data)
    assert isinstance(value, float | int)
    return float(value)


def _definition(data: CategoryData, metric_id: str) -> MetricDef:
    definition = metric_def(metric_id, data.spec)
    if definition is None:
        raise ValueError(f"category {data.name!r} has no metric {metric_id!r}")
    return definition


def _worsening(definition: MetricDef, metric_id: str, data: CategoryData, table: TypeTable) -> TwoSampleStatistic:
    """How much worse the candidate is than the baseline (:meth:`MetricDef.worsening`), for samples given
    as weights over ``table``'s types: the statistic of a one-sided test of "worse" (for a metric where any
    change is worse, its size: a two-sided test of the change)."""

    def statistic(base_w: NDArray[np.float64], cand_w: NDArray[np.float64]) -> NDArray[np.float64]:
        cand = definition.statistic_on(data, table, cand_w)
        base = definition.statistic_on(data, table, base_w)
        return definition.worsening(data.mode, cand, base)

    return statistic


def _from_test(metric_id: str, delta: float, test: PermutationResult, method: str, n: int) -> Comparison:
    return Comparison(metric=metric_id, delta=delta, p_value=test.p_value, method=method, n_pairs=n, se=test.se)


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
    p_margin = float(ndtr(-(worse_by - allowed) / se))  # the upper normal tail, accurate far out
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
        worse_by = worsening_by(direction_of(metric_id, result.mode), float(value), float(old))
        regression = rule.regression
        allowed = regression.cumulative_allowed(float(old)) if cumulative else regression.allowed(float(old))
        out[metric_id] = with_margin(comparison, worse_by, allowed)
    return out
