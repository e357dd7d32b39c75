"""The corrected label statistics behind metrics corrected with a scorer card: point values, bootstrap
replicates, and the p-value of a bound on the corrected scale.

Every group-share metric is a function of the label counts (:mod:`~pytest_t2ibias.metrics.counts`). With a
card for the category's attribute, the predicted-label counts are replaced by the estimated true-class
counts (:func:`~pytest_t2ibias.metrics.misclassification.correct_counts`) *before* the metric functions
run, so every metric built on the shares is corrected the same way and no metric needs to know about
cards. Replicates resample the run's images (by type, jointly with every presence statistic a metric
reads) and each row of the card's confusion matrix (Dirichlet), and correct each pair.

Presence is corrected the same way, one term at a time: a metric that reads the terms found in a list
(``hits:<list>``: GMR, IEMR, the keyword proxy) is a mean of per-term presence rates, so each term the card
judged has its observed count replaced by the Rogan-Gladen estimate of its true count (from the term's
sensitivity, i.e. recall, and specificity on the card; their Beta posteriors in the replicates) before the
metric runs. Rates of "any term of a list" (CAR, hallucination) need the joint errors over the list's
terms, which a per-term card does not give: they stay raw.

Kept apart from :mod:`~pytest_t2ibias.metrics.corrected` (the estimates with intervals) so that
:func:`~pytest_t2ibias.metrics.intervals.bound_p_value` can use it without an import cycle.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

from pytest_t2ibias.metrics.counts import (
    LABELS,
    TERM,
    Stats,
    image_features,
    multinomial_draws,
    point_stats,
    stats_of,
    type_table,
)
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.misclassification import (
    card_row_draws,
    correct_counts,
    misclassification_matrix,
    rogan_gladen,
    term_rate_draws,
)
from pytest_t2ibias.metrics.registry import metric_def, point_value, reads_of
from pytest_t2ibias.types import MetricValue

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pytest_t2ibias.metrics.scorer_card import AttributeCard, TermCard

#: Per term list: the terms a card judged, as (index in the list, the term's card).
TermCards = dict[str, list[tuple[int, "TermCard"]]]

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


def term_cards(data: CategoryData, terms: Mapping[str, TermCard] | None) -> TermCards:
    """The card's judgements of the category's terms, per list: a ``<list>:<term>`` entry, else the
    term's own (``<term>``). A term the audit never saw present (or never absent) has no recall (or
    specificity) and is left raw."""
    out: TermCards = {}
    for list_name in data.present:
        found = []
        for index, term in enumerate(data.spec.term_list(list_name)):
            card = (terms or {}).get(f"{list_name}:{term}") or (terms or {}).get(term)
            if (
                card is not None
                and card.true_positive + card.false_negative
                and card.true_negative + card.false_positive
            ):
                found.append((index, card))
        if found:
            out[list_name] = found
    return out


def label_metrics(data: CategoryData, metric_ids: Sequence[str]) -> list[str]:
    """The count metrics among ``metric_ids`` that read the labels (the ones an attribute card corrects)."""
    return corrected_metrics(data, metric_ids, labels=True, lists=())


def corrected_metrics(
    data: CategoryData, metric_ids: Sequence[str], *, labels: bool, lists: Sequence[str]
) -> list[str]:
    """The count metrics among ``metric_ids`` that a card corrects: those reading the labels (when
    ``labels``, a card for the attribute) or the terms found in one of ``lists`` (terms on the card)."""
    wanted = ({LABELS} if labels else set()) | {f"hits:{name}" for name in lists}
    out = []
    for metric_id in metric_ids:
        definition = metric_def(metric_id, data.spec)
        if definition is not None and definition.counts is not None and wanted & set(reads_of(definition, data.spec)):
            out.append(metric_id)
    return out


def correct_hits(
    stats: Stats,
    observed: Mapping[str, list[NDArray[np.float64]]],
    cards: TermCards,
    rates: Mapping[str, list[tuple[NDArray[np.float64], NDArray[np.float64]]]],
) -> Stats:
    """``stats`` with each carded term's count in ``hits[list]`` replaced by its Rogan-Gladen estimate.

    Args:
        observed: per list, per carded term (in ``cards`` order), its count in each sample (B,).
        rates: per list, per carded term, (sensitivity, specificity): scalars or one per sample.
    """
    hits = dict(stats.hits)
    for list_name, terms in cards.items():
        if list_name not in hits:
            continue
        total = hits[list_name].copy()
        for k in range(len(terms)):
            count = observed[list_name][k]
            sensitivity, specificity = rates[list_name][k]
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.where(stats.n > 0, count / stats.n, 0.0)
            total = total - count + stats.n * rogan_gladen(rate, sensitivity, specificity)
        hits[list_name] = total
    return Stats(stats.spec, stats.attribute, stats.mode, stats.label_names, stats.n, stats.groups, stats.anys,
                 hits, stats.sizes)  # fmt: skip


def _point_rates(card: TermCard) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    sensitivity = card.true_positive / (card.true_positive + card.false_negative)
    specificity = card.true_negative / (card.true_negative + card.false_positive)
    return np.asarray(sensitivity), np.asarray(specificity)


def corrected_draws(
    data: CategoryData,
    entry: AttributeCard | None,
    metric_ids: Sequence[str],
    seed: int,
    n_boot: int,
    terms: Mapping[str, TermCard] | None = None,
) -> dict[str, tuple[MetricValue, str | None, NDArray[np.float64] | None]]:
    """Per corrected metric: its corrected value (or None), why it is None, and ``n_boot`` replicates
    (None for a distribution or an unavailable metric). ``entry`` corrects the labels, ``terms`` (the
    card's per-term judgements) the terms found. Seeded: the same data, card and seed give the same
    replicates."""
    cards = term_cards(data, terms)
    targets = corrected_metrics(data, metric_ids, labels=entry is not None, lists=list(cards))
    if not targets:
        return {}
    point = point_stats(data)
    features = {r for m in targets for r in reads_of(metric_def(m, data.spec), data.spec)}  # type: ignore[arg-type]
    read_lists = [name for name in cards if f"hits:{name}" in features]
    cards = {name: cards[name] for name in read_lists}
    term_features = {name: [f"{TERM}:{name}:{index}" for index, _ in cards[name]] for name in cards}
    table = type_table(data, tuple(sorted(features | {f for fs in term_features.values() for f in fs})))
    draws = multinomial_draws(table.counts, n_boot, seed, "corrected:" + ",".join(sorted(features)))
    replicates = stats_of(data, table, draws)
    if entry is not None:
        _, point_matrix = misclassification_matrix(entry.matrix())
        point = correct_stats(point, entry, point_matrix)
        rng = np.random.default_rng([seed, zlib.crc32(b"card-rows")])
        replicates = correct_stats(replicates, entry, card_row_draws(entry.matrix(), n_boot, rng))
    if cards:
        term_rng = np.random.default_rng([seed, zlib.crc32(b"card-terms")])
        point = correct_hits(
            point,
            {
                name: [np.array([float(image_features(data, f).sum())]) for f in fs]
                for name, fs in term_features.items()
            },
            cards,
            {name: [_point_rates(card) for _, card in cards[name]] for name in cards},
        )
        weights = np.asarray(draws, dtype=np.float64)
        replicates = correct_hits(
            replicates,
            {name: [weights @ table.values[f].astype(np.float64) for f in fs] for name, fs in term_features.items()},
            cards,
            {
                name: [
                    term_rate_draws(
                        c.true_positive, c.false_negative, c.true_negative, c.false_positive, n_boot, term_rng
                    )
                    for _, c in cards[name]
                ]
                for name in cards
            },
        )
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
    entry, terms = data.scorer_card, data.term_cards
    lists = list(term_cards(data, terms))
    if not corrected_metrics(data, [metric_id], labels=entry is not None, lists=lists):
        return None
    drawn = corrected_draws(data, entry, [metric_id], seed, BOUND_DRAWS, terms)
    value, _, values = drawn.get(metric_id, (None, None, None))
    if not isinstance(value, float) or values is None:
        raise ValueError(f"`{metric_id}` has no value")
    beyond = value - bound if side == "max" else bound - value
    if beyond <= 0:
        return 1.0
    kept = values[np.isfinite(values)]
    spread = float(kept.std(ddof=1)) if len(kept) > 1 else 0.0
    if spread == 0.0:
        return 1.0 / (BOUND_DRAWS + 1)
    return max(float(norm.sf(beyond / spread)), 1e-300)
