"""Metrics corrected for the scorer's misclassification, using a scorer card: values with intervals.

The corrected values and their bootstrap replicates come from :mod:`~pytest_t2ibias.metrics.corrected_draws`
(the predicted-label counts replaced by the estimated true-class counts before the metric functions run,
so every metric built on the shares is corrected the same way). Intervals are the 2.5 / 97.5 percentiles
of replicates that resample the run's images and each row of the card's confusion matrix (method
``misclassification-bootstrap``). A group's share gets more: a bootstrap of a group no image was read as
never draws it, so every replicate is 0 and the interval ``[0, 0]``; its interval is joined with the
exact (Clopper-Pearson) interval of the raw share carried through the card's correction (method
``misclassification-bootstrap+exact``), which keeps its coverage at the boundary. Metrics that read the
terms found in a list (GMR, IEMR, the keyword proxy) are corrected term by term where the card judged the
terms (Rogan-Gladen, from each term's recall and specificity); rates of "any term of a list", captions and
embeddings keep their raw value and interval.
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_t2ibias.metrics.corrected_draws import CORRECTED_METHOD, correct_stats, corrected_draws, term_cards
from pytest_t2ibias.metrics.counts import point_stats, resplit
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.intervals import (
    CONFIDENCE,
    N_BOOT,
    Interval,
    MetricEstimate,
    exact_interval,
    outcome_indicator,
)
from pytest_t2ibias.metrics.misclassification import misclassification_matrix, percentile_interval
from pytest_t2ibias.metrics.registry import metric_def
from pytest_t2ibias.metrics.scorer_card import AttributeCard, ScorerCard, ScorerCardError

__all__ = ["CORRECTED_METHOD", "CORRECTED_SHARE_METHOD", "corrected_estimates"]

#: The interval method of a corrected group share: the bootstrap joined with the corrected exact interval.
CORRECTED_SHARE_METHOD = CORRECTED_METHOD + "+exact"


def card_for(data: CategoryData, card: ScorerCard | None) -> AttributeCard | None:
    """The card's entry for the category's attribute (None: nothing to correct).

    Raises:
        ScorerCardError: the card has the attribute but no audit image of one of its declared groups, so
            the share of that group cannot be corrected.
    """
    if card is None or data.attribute is None or data.spec.attribute not in card.attributes:
        return None
    entry = card.attributes[data.spec.attribute]
    rows, _ = misclassification_matrix(entry.matrix())
    seen = {entry.classes[r] for r in rows}
    missing = [g for g in data.attribute.groups if g not in seen]
    if missing:
        raise ScorerCardError(
            f"scorer card ({card.scorer}): field `attributes.{data.spec.attribute}`: no audit image is "
            f"truly {missing[0]!r}, so its share cannot be corrected; add such images to the audit set"
        )
    return entry


def corrected_estimates(
    data: CategoryData,
    raw: Mapping[str, MetricEstimate],
    card: ScorerCard | None,
    *,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> dict[str, MetricEstimate] | None:
    """Every metric of ``raw`` corrected for the card (those that read the labels, or the terms found of a
    list whose terms the card judged), or ``None`` when the card has nothing for this category.

    Raises:
        ScorerCardError: see :func:`card_for`.
    """
    entry = card_for(data, card)
    terms = card.terms if card is not None and term_cards(data, card.terms) else None
    if (entry is None and terms is None) or data.n == 0:
        return None
    drawn = corrected_draws(data, entry, list(raw), seed, n_boot, terms)
    if not drawn:
        return None
    out = dict(raw)
    for metric_id, (value, reason, values) in drawn.items():
        interval = None
        if isinstance(value, float) and values is not None and (values == values).sum() >= n_boot / 2:
            low, high = percentile_interval(values, CONFIDENCE)
            method = CORRECTED_METHOD
            exact = exact_through_card(data, entry, metric_id) if entry is not None else None
            if exact is not None:
                low, high, method = min(low, exact[0]), max(high, exact[1]), CORRECTED_SHARE_METHOD
            interval = Interval(min(low, value), max(high, value), method, CONFIDENCE)
        out[metric_id] = MetricEstimate(value, interval, reason)
    return out


def exact_through_card(data: CategoryData, entry: AttributeCard, metric_id: str) -> tuple[float, float] | None:
    """The exact (Clopper-Pearson) interval of a group's raw share carried through the card's correction,
    or None for a metric that is not a group's share.

    Each end of the raw interval is a share of the group among the images read; the others keep their
    proportions among themselves (evenly split when none was read), and the label counts so re-split are
    corrected with the card's point matrix like the data's own. For two groups the correction is monotone
    and this is the exact interval on the corrected scale (given the card); it is what keeps a corrected
    share's coverage where no image of a group was read (a bootstrap of 0 of them draws 0 every time).
    """
    definition = metric_def(metric_id, data.spec)
    attribute = data.attribute
    if definition is None or definition.counts is None or attribute is None:
        return None
    outcome = definition.outcome
    if outcome is None or outcome.kind != "label" or outcome.target not in attribute.groups:
        return None
    codes = data.label_codes()
    if data.mode == "paper" and any(name not in attribute.groups for name in codes.names):
        return None  # paper shares count unknown labels in the denominator: no re-split over the groups
    indicator, over = outcome_indicator(data, outcome)
    total, hits = int(over.sum()), int(indicator[over].sum())
    if total == 0:
        return None
    raw = exact_interval(hits, total)
    point = point_stats(data)
    counts = dict(zip(point.label_names, point.groups[0].tolist(), strict=True))
    others = [g for g in attribute.groups if g != outcome.target]
    rest = sum(counts.get(g, 0.0) for g in others)
    _, matrix = misclassification_matrix(entry.matrix())
    ends = []
    for share in (raw.low, raw.high):
        split = {outcome.target: share}
        for g in others:
            weight = counts.get(g, 0.0) / rest if rest > 0 else 1.0 / len(others)
            split[g] = (1.0 - share) * weight
        try:
            value = definition.counts(correct_stats(resplit(point, split), entry, matrix))
        except MetricUnavailable:
            return None
        assert not isinstance(value, dict)
        ends.append(float(value[0]))
    return min(ends), max(ends)
