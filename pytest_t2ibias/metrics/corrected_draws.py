"""The corrected label statistics behind metrics corrected with a scorer card: point values, bootstrap
replicates, and the p-value of a bound on the corrected scale.

Every group-share metric is a function of the label counts (:mod:`~pytest_t2ibias.metrics.counts`). With a
card for the category's attribute, the predicted-label counts are replaced by the estimated true-class
counts (:func:`~pytest_t2ibias.metrics.misclassification.correct_counts`) *before* the metric functions
run, so every metric built on the shares is corrected the same way and no metric needs to know about
cards. Replicates resample the run's images (by type, jointly with every presence statistic a metric
reads) and each row of the card's confusion matrix (Dirichlet), and correct each pair.

Kept apart from :mod:`~pytest_t2ibias.metrics.corrected` (the estimates with intervals) so that
:func:`~pytest_t2ibias.metrics.intervals.bound_p_value` can use it without an import cycle.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.counts import LABELS, Stats, multinomial_draws, point_stats, stats_of, type_table
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.misclassification import card_row_draws, correct_counts, misclassification_matrix
from pytest_t2ibias.metrics.registry import metric_def, point_value, reads_of
from pytest_t2ibias.types import MetricValue

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.scorer_card import AttributeCard

#: The interval method of a corrected metric.
CORRECTED_METHOD = "misclassification-bootstrap"
#: Replicates of a corrected bound test (the interval's own count, so both read the same draws).
BOUND_DRAWS = 1000


def correct_stats(stats: Stats, entry: AttributeCard, matrix: NDArray[np.float64]) -> Stats:
    """``stats`` with the label counts replaced by the true-class counts ``matrix`` implies.

    Args:
        matrix: (T, P) or (B, T, P) misclassification matrices over the card's observed true classes
            (rows) and all its classes (columns). Labels the card never saw predicted are kept as they are.
    """
    classes = entry.classes
    rows, _ = misclassification_matrix(entry.matrix())
    b = stats.samples
    y = np.zeros((b, len(classes)))
    kept_names: list[str] = []
    kept: list[NDArray[np.float64]] = []
    for j, name in enumerate(stats.label_names):
        if name in classes:
            y[:, classes.index(name)] += stats.groups[:, j]
        else:  # a label the card never saw predicted: nothing is known of it, keep it
            kept_names.append(name)
            kept.append(stats.groups[:, j])
    shares = correct_counts(y, matrix)
    counts = y.sum(axis=1, keepdims=True) * shares
    names = tuple(classes[r] for r in rows) + tuple(kept_names)
    groups = np.concatenate([counts, np.stack(kept, axis=1) if kept else np.zeros((b, 0))], axis=1)
    return Stats(stats.spec, stats.attribute, stats.mode, names, stats.n, groups, stats.anys, stats.hits, stats.sizes)


def label_metrics(data: CategoryData, metric_ids: Sequence[str]) -> list[str]:
    """The count metrics among ``metric_ids`` that read the labels (the ones a card corrects)."""
    out = []
    for metric_id in metric_ids:
        definition = metric_def(metric_id, data.spec)
        if definition is not None and definition.counts is not None and LABELS in reads_of(definition, data.spec):
            out.append(metric_id)
    return out


def corrected_draws(
    data: CategoryData, entry: AttributeCard, metric_ids: Sequence[str], seed: int, n_boot: int
) -> dict[str, tuple[MetricValue, str | None, NDArray[np.float64] | None]]:
    """Per corrected metric: its corrected value (or None), why it is None, and ``n_boot`` replicates
    (None for a distribution or an unavailable metric). Seeded: the same data, card and seed give the same
    replicates."""
    _, point_matrix = misclassification_matrix(entry.matrix())
    point = correct_stats(point_stats(data), entry, point_matrix)
    targets = label_metrics(data, metric_ids)
    if not targets:
        return {}
    features = sorted({r for m in targets for r in reads_of(metric_def(m, data.spec), data.spec)})  # type: ignore[arg-type]
    table = type_table(data, tuple(features))
    draws = multinomial_draws(table.counts, n_boot, seed, "corrected:" + ",".join(features))
    rng = np.random.default_rng([seed, zlib.crc32(b"card-rows")])
    replicates = correct_stats(stats_of(data, table, draws), entry, card_row_draws(entry.matrix(), n_boot, rng))
    out: dict[str, tuple[MetricValue, str | None, NDArray[np.float64] | None]] = {}
    for metric_id in targets:
        definition = metric_def(metric_id, data.spec)
        assert definition is not None and definition.counts is not None
        try:
            value = point_value(definition.counts(point))
        except MetricUnavailable as why:
            out[metric_id] = (None, str(why), None)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            out[metric_id] = (None, "not a finite number", None)
            continue
        values = None
        if isinstance(value, float):
            try:
                values = np.asarray(definition.counts(replicates), dtype=np.float64)
            except MetricUnavailable:
                values = np.full(n_boot, np.nan)
        out[metric_id] = (value, None, values)
    return out


def corrected_bound_p_value(
    data: CategoryData, metric_id: str, bound: float, side: Literal["max", "min"], seed: int = 0
) -> float | None:
    """One-sided p-value of "the corrected metric is within its bound", or None when the data carry no
    card or the metric does not read the labels (then the raw test applies).

    Within the bound: p = 1. Beyond it: the normal tail of the distance to the bound in units of the
    replicates' spread (run and card resampled): a p-value that can be as small as a family-wise
    correction needs, which the share of 1,000 replicates cannot.
    """
    entry = data.scorer_card
    if entry is None or not label_metrics(data, [metric_id]):
        return None
    value, _, values = corrected_draws(data, entry, [metric_id], seed, BOUND_DRAWS).get(metric_id, (None, None, None))
    if not isinstance(value, float) or values is None:
        raise ValueError(f"`{metric_id}` has no value")
    beyond = value - bound if side == "max" else bound - value
    if beyond <= 0:
        return 1.0
    kept = values[np.isfinite(values)]
    spread = float(kept.std(ddof=1)) if len(kept) > 1 else 0.0
    if spread == 0.0:
        return 1.0 / (BOUND_DRAWS + 1)
    return max(1.0 - NormalDist().cdf(beyond / spread), 1e-300)
