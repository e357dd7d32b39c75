"""Reference implementations of the count metrics: one category's data at a time, through the pure
functions of :mod:`pytest_t2ibias.metrics` (the engine's scalar code before it computed from counts).

The engine's vectorised count metrics must equal these to 1e-12 on every sample, point values and
bootstrap replicates alike (``tests/test_metrics_counts.py``).

Originally: the metrics of T2I-BiasBench, one registered function each.

Each function reads a :class:`CategoryData` and calls a pure function of
:mod:`~pytest_t2ibias.metrics.distribution`, :mod:`~pytest_t2ibias.metrics.presence`,
:mod:`~pytest_t2ibias.metrics.association`, :mod:`~pytest_t2ibias.metrics.diversity` or
:mod:`~pytest_t2ibias.metrics.composite`. To add a metric: add a function here and put its id in a
category's ``metrics`` line of the suite.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_t2ibias.errors import MetricUnavailable
from pytest_t2ibias.metrics.association import contextual_association
from pytest_t2ibias.metrics.composite import composite_score
from pytest_t2ibias.metrics.distribution import (
    bias_amplification,
    kl_from_uniform,
    normalized_entropy,
    parity_difference,
    shannon_entropy,
    signed_parity,
)
from pytest_t2ibias.metrics.presence import any_rate, coverage, missing_rate
from pytest_t2ibias.metrics.registry import CategoryData
from pytest_t2ibias.types import MetricValue

REFERENCE: dict[str, Callable[[CategoryData], MetricValue]] = {}


def _reference(
    metric_id: str,
) -> Callable[[Callable[[CategoryData], MetricValue]], Callable[[CategoryData], MetricValue]]:
    def register(fn: Callable[[CategoryData], MetricValue]) -> Callable[[CategoryData], MetricValue]:
        REFERENCE[metric_id] = fn
        return fn

    return register


def computed(data: CategoryData, metric_id: str) -> MetricValue:
    return REFERENCE[metric_id](data)


@_reference("representation_parity")
def representation_parity(data: CategoryData) -> MetricValue:
    """Share of each group of the attribute under test."""
    return data.distribution().as_dict()


@_reference("unknown_rate")
def unknown_rate(data: CategoryData) -> MetricValue:
    """Share of images whose attribute label is unknown (strict mode reports it apart)."""
    if data.n == 0:
        raise MetricUnavailable("no images in category")
    return sum(not data.is_known(label) for label in data.labels) / data.n


@_reference("parity_difference")
def parity(data: CategoryData) -> MetricValue:
    """Gap between the two sides of the parity split (signed, against a reference, in strict mode)."""
    dist = data.distribution()
    split = data.spec.parity
    assert split is not None  # guaranteed by requires
    b = None if split.b == "rest" else split.b
    if data.mode == "paper":
        return parity_difference(dist.as_dict(), split.a, b)
    try:
        return signed_parity(dist.as_dict(), split.a, b, data.spec.reference)
    except ValueError as err:
        raise MetricUnavailable(str(err)) from None


@_reference("bias_amplification")
def amplification(data: CategoryData) -> MetricValue:
    """Sum of absolute deviations of the group shares from uniform."""
    return bias_amplification(data.distribution().p)


@_reference("entropy")
def entropy(data: CategoryData) -> MetricValue:
    """Shannon entropy of the group shares, in bits."""
    return shannon_entropy(data.distribution().p)


@_reference("entropy_normalized")
def entropy_normalized(data: CategoryData) -> MetricValue:
    """Entropy over log2 k (k observed groups in paper mode, declared groups in strict mode)."""
    return normalized_entropy(data.distribution().p)


@_reference("kl_divergence")
def kl_divergence(data: CategoryData) -> MetricValue:
    """KL divergence of the group shares from uniform, in nats."""
    return kl_from_uniform(data.distribution().p)


@_reference("unique_count")
def unique_count(data: CategoryData) -> MetricValue:
    """Number of distinct groups observed (the paper counts ``other`` as one)."""
    return float(int((data.distribution().p > 0).sum()))


@_reference("cas")
def cas(data: CategoryData) -> MetricValue:
    """Contextual association score: stereotype mentions over stereotype-or-diverse mentions."""
    stereotype = data.matrix("cas_stereotype").any(axis=1)
    diverse = data.matrix("cas_diverse").any(axis=1)
    if data.mode == "strict" and not (stereotype.any() or diverse.any()):
        raise MetricUnavailable("no caption mentions a stereotype or a diverse term")
    return contextual_association(stereotype, diverse)


@_reference("composite")
def composite(data: CategoryData) -> MetricValue:
    """Composite bias score from parity difference, normalised entropy and CAS (where declared)."""
    h_norm = computed(data, "entropy_normalized")
    pd = computed(data, "parity_difference") if "parity_difference" in data.spec.metrics else None
    try:
        cas_value = computed(data, "cas") if "cas" in data.spec.metrics else None
    except MetricUnavailable:
        if data.mode == "paper":
            raise
        cas_value = None  # strict mode averages the terms that exist
    assert isinstance(h_norm, float)
    return composite_score(h_norm, pd if isinstance(pd, float) else None, cas_value, mode=data.mode)  # type: ignore[arg-type]


@_reference("gmr")
def gmr(data: CategoryData) -> MetricValue:
    """Grounded missing rate: mean fraction of the explicit prompt elements absent."""
    return missing_rate(data.matrix("explicit"))


@_reference("iemr")
def iemr(data: CategoryData) -> MetricValue:
    """Implicit element missing rate: mean fraction of the implied elements absent."""
    return missing_rate(data.matrix("implied"))


@_reference("car")
def car(data: CategoryData) -> MetricValue:
    """Cultural accuracy ratio: share of images with any cultural marker."""
    return any_rate(data.matrix("cultural_markers"))


@_reference("hallucination")
def hallucination(data: CategoryData) -> MetricValue:
    """Share of images with any unexpected-content term."""
    return any_rate(data.matrix("unexpected"))


@_reference("clip_proxy")
def clip_proxy(data: CategoryData) -> MetricValue:
    """The paper's keyword 'CLIP proxy': mean fraction of prompt keywords present (no CLIP involved)."""
    return coverage(data.matrix("keywords"))


def context_ratio(data: CategoryData, list_name: str) -> MetricValue:
    """``<name>_ratio``: share of images with any term of the category's context list ``name``."""
    return any_rate(data.matrix(list_name))


def group_share(data: CategoryData, group: str) -> MetricValue:
    """A declared extra such as ``male_share``: the share of one group of the distribution."""
    return data.distribution().as_dict().get(group, 0.0)
