"""Metrics corrected for the scorer's misclassification, using a scorer card: values with intervals.

The corrected values and their bootstrap replicates come from :mod:`~pytest_t2ibias.metrics.corrected_draws`
(the predicted-label counts replaced by the estimated true-class counts before the metric functions run,
so every metric built on the shares is corrected the same way). Intervals are the 2.5 / 97.5 percentiles
of replicates that resample the run's images and each row of the card's confusion matrix (method
``misclassification-bootstrap``). Metrics that read the terms found in a list (GMR, IEMR, the keyword
proxy) are corrected term by term where the card judged the terms (Rogan-Gladen, from each term's recall
and specificity); rates of "any term of a list", captions and embeddings keep their raw value and interval.
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_t2ibias.metrics.corrected_draws import CORRECTED_METHOD, corrected_draws, term_cards
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.intervals import CONFIDENCE, N_BOOT, Interval, MetricEstimate
from pytest_t2ibias.metrics.misclassification import misclassification_matrix, percentile_interval
from pytest_t2ibias.metrics.scorer_card import AttributeCard, ScorerCard, ScorerCardError

__all__ = ["CORRECTED_METHOD", "card_for", "corrected_estimates"]


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
            interval = Interval(min(low, value), max(high, value), CORRECTED_METHOD, CONFIDENCE)
        out[metric_id] = MetricEstimate(value, interval, reason)
    return out
