"""Metrics across categories: how a whole suite (dozens of occupations) compares with its references.

Per category the ``*_reference`` metrics say how one occupation's drawn shares compare with its
real-world share. Across the categories that declare a ``compare_to`` reference:

* ``mad_reference``: the mean absolute deviation from the reference (DALL-Eval style): the mean over
  categories of the total variation distance between drawn and reference shares (for two groups, the
  mean of ``|gap_reference|``);
* ``amplified_share``: the share of categories whose ``amplification_reference`` is above 0 (the model
  draws the real-world skew stronger than it is);
* ``mean_amplification``: the mean ``amplification_reference``;
* the worst categories: the largest amplifications.

Intervals (95%) come from posterior draws of every category's shares (Dirichlet with Jeffreys' prior, half
an image per declared group, seeded): each draw gives one value of each aggregate, and the interval is the
central 95% of them (for ``mean_amplification`` centred on the point value, as the prior pulls every
share toward parity; for ``mad_reference`` reflected about it, as a mean of absolute values drawn with
noise sits above the point by that noise). With few images per category ``mad_reference`` is
biased upward (a share measured on n images is off by about ``sqrt(p(1-p)/n)`` even when the model
matches the reference: about 0.05 at 40 images): compare runs of the same size, or gate
``mean_amplification``, which has no such bias.

Example:
    >>> from pytest_t2ibias.suites import load_suite
    >>> suite = load_suite("occupations")
    >>> labels = {"nurse": ["female"] * 19 + ["male"], "electrician": ["male"] * 20}
    >>> agg = aggregate_labels(suite, labels, seed=0)
    >>> round(agg.metrics["mean_amplification"].value, 4)
    0.0465
    >>> [w.category for w in agg.worst]
    ['nurse', 'electrician']
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics import reference
from pytest_t2ibias.metrics.intervals import CONFIDENCE, Interval, MetricEstimate

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

#: The aggregate metrics, with which way is worse (all: higher).
AGGREGATE_METRICS = {
    "mad_reference": "Mean absolute deviation of the drawn shares from the reference, over categories.",
    "amplified_share": "Share of categories drawn with a stronger skew than the reference's.",
    "mean_amplification": "Mean amplification of the reference's skew, over categories.",
}
#: Posterior draws behind an aggregate's interval and its bound p-values (which cannot go below one in
#: N_DRAWS + 1: a family of 40 checks at alpha 0.01 needs 0.00025, so 20,000 leave room).
N_DRAWS = 20_000
#: How many of the worst categories an aggregate lists.
WORST = 5
#: Jeffreys' prior: half an image per declared group.
_PRIOR = 0.5


@dataclass(frozen=True)
class WorstCategory:
    """One of the categories that amplify their reference most."""

    category: str
    amplification: float
    gap: float
    n: int


@dataclass(frozen=True)
class Aggregates:
    """The aggregates of a run: ``metrics[id]`` for each id of :data:`AGGREGATE_METRICS`."""

    categories: tuple[str, ...]
    metrics: dict[str, MetricEstimate]
    worst: tuple[WorstCategory, ...]
    #: per metric, the posterior draws its interval is read from (for :func:`bound_p_value`)
    draws: dict[str, NDArray[np.float64]] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class _Category:
    name: str
    groups: tuple[str, ...]
    counts: NDArray[np.float64]
    reference: dict[str, float]
    side: list[str]


def _category(suite: Suite, name: str, labels: Sequence[str]) -> _Category | None:
    ref = suite.reference_of(name)
    attribute = suite.attribute_of(name)
    if ref is None or attribute is None:
        return None
    groups = tuple(attribute.groups)
    counts = np.array([sum(1 for label in labels if label == g) for g in groups], dtype=np.float64)
    spec = suite.categories[name]
    assert spec.compare_to is not None and spec.attribute is not None
    side = list(spec.parity.a) if spec.parity else [next(iter(spec.references[spec.compare_to].shares[spec.attribute]))]
    return _Category(name, groups, counts, ref, side)


def aggregate(suite: Suite, results: Mapping[str, CategoryResult], **kwargs: int) -> Aggregates:
    """The aggregates of measured categories (those without a ``compare_to`` reference are left out)."""
    labels = {name: result.columns(suite).labels for name, result in results.items()}
    return aggregate_labels(suite, labels, **kwargs)


def aggregate_labels(
    suite: Suite, labels: Mapping[str, Sequence[str]], *, seed: int = 0, n_draws: int = N_DRAWS, worst: int = WORST
) -> Aggregates:
    """The aggregates of the categories' labels of the attribute under test (``category -> labels``).

    Labels that are not a declared group (``unknown``) are left out of the shares, as in strict mode.
    """
    chosen = [c for name, values in labels.items() if (c := _category(suite, name, values)) is not None]
    usable = [c for c in chosen if c.counts.sum() > 0]
    if not usable:
        why = "no category with a `compare_to` reference" if not chosen else "no known label in any category"
        return Aggregates(
            tuple(c.name for c in chosen), {m: MetricEstimate(None, None, why) for m in AGGREGATE_METRICS}, ()
        )
    point_amp, point_gap, point_dev = [], [], []
    draws_amp, draws_dev = np.zeros((n_draws, len(usable))), np.zeros((n_draws, len(usable)))
    for j, c in enumerate(usable):
        p = (c.counts / c.counts.sum())[None, :]
        point_amp.append(float(reference.amplification(p, c.groups, c.reference)[0]))
        point_gap.append(float(reference.gap(p, c.groups, c.reference, c.side)[0]))
        point_dev.append(float(reference.deviation(p, c.groups, c.reference)[0]))
        rng = np.random.default_rng([seed, zlib.crc32(f"aggregate:{c.name}".encode())])
        sample = rng.dirichlet(c.counts + _PRIOR, size=n_draws)
        draws_amp[:, j] = reference.amplification(sample, c.groups, c.reference)
        draws_dev[:, j] = reference.deviation(sample, c.groups, c.reference)
    amp, dev = np.array(point_amp), np.array(point_dev)
    mad = float(dev.mean())
    draws = {
        "mad_reference": 2 * mad - draws_dev.mean(axis=1),  # reflected about the point value
        "amplified_share": (draws_amp > 0).mean(axis=1),
        "mean_amplification": _centred(draws_amp.mean(axis=1), float(amp.mean())),
    }
    metrics = {
        "mad_reference": _estimate(mad, draws["mad_reference"], (0.0, 1.0)),
        "amplified_share": _estimate(float((amp > 0).mean()), draws["amplified_share"], (0.0, 1.0)),
        "mean_amplification": _estimate(float(amp.mean()), draws["mean_amplification"], (-1.0, 1.0)),
    }
    order = sorted(range(len(usable)), key=lambda j: (-point_amp[j], usable[j].name))[:worst]
    ranked = tuple(
        WorstCategory(usable[j].name, point_amp[j], point_gap[j], int(usable[j].counts.sum())) for j in order
    )
    return Aggregates(tuple(c.name for c in usable), metrics, ranked, draws)


def bound_p_value(aggregates: Aggregates, metric_id: str, bound: float, side: Literal["max", "min"]) -> float:
    """One-sided p-value of "the aggregate is within its bound" (as :func:`~pytest_t2ibias.metrics.intervals.
    bound_p_value` for a category's metric): 1 when the value is within, else the share of the draws that
    are within (at least one in ``draws + 1``), so an aggregate bound joins the run's family of checks."""
    value = aggregates.metrics[metric_id].value
    if not isinstance(value, float):
        raise ValueError(f"`{metric_id}` has no value")
    if (value <= bound) if side == "max" else (value >= bound):
        return 1.0
    draws = aggregates.draws[metric_id]
    within = draws <= bound if side == "max" else draws >= bound
    return float((np.count_nonzero(within) + 1) / (len(draws) + 1))


def _centred(draws: NDArray[np.float64], value: float) -> NDArray[np.float64]:
    """The draws moved to centre on the point value: the prior pulls every share toward parity, and over
    dozens of categories that pull would outweigh the spread of a mean."""
    return np.asarray(draws - draws.mean() + value, dtype=np.float64)


def _estimate(value: float, draws: NDArray[np.float64], span: tuple[float, float]) -> MetricEstimate:
    tail = (1 - CONFIDENCE) / 2
    low, high = (float(q) for q in np.quantile(draws, [tail, 1 - tail]))
    # the interval holds the point value (the prior pulls shares off 0 and 1), within what the metric can take
    low, high = max(span[0], min(low, value)), min(span[1], max(high, value))
    return MetricEstimate(value, Interval(low, high, "posterior", CONFIDENCE))
