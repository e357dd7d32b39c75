"""One category's metrics with their intervals, corrected with a scorer card: what the measure stage
computes for one :class:`~pytest_t2ibias.metrics.data.CategoryData` (the attribute under test, or the view
of another attribute), and what the Fairlearn-shaped view computes its groups with."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import compute_data
from pytest_t2ibias.metrics.intervals import MetricEstimate, with_intervals

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.scorer_card import ScorerCard


def estimates(
    data: CategoryData, metric_ids: list[str], card: ScorerCard | None, seed: int, n_boot: int
) -> tuple[dict[str, MetricEstimate], dict[str, MetricEstimate] | None, CategoryData]:
    """The metrics ``metric_ids`` of ``data`` with intervals, corrected with ``card`` (None when it has
    nothing for them), and the data carrying the card's entries when it does (bounds are then tested on the
    corrected scale: :func:`~pytest_t2ibias.metrics.intervals.bound_p_value`)."""
    values = compute_data(data, only=metric_ids)
    estimates = with_intervals(data, values, seed=seed, n_boot=n_boot)
    if card is None:
        return estimates, None, data
    from pytest_t2ibias.metrics.corrected import corrected_estimates

    corrected = corrected_estimates(data, estimates, card, seed=seed, n_boot=n_boot)
    if corrected is None:
        return estimates, None, data
    attribute = data.spec.attribute
    data = replace(
        data,
        scorer_card=card.attributes.get(attribute) if attribute is not None else None,
        term_cards=card.terms or None,
    )
    return estimates, corrected, data
