"""The metric engine: pure numpy functions and a registry of the benchmark's metrics.

Nothing here imports torch.
"""

from pytest_t2ibias.metrics.association import contextual_association
from pytest_t2ibias.metrics.composite import composite_score
from pytest_t2ibias.metrics.distribution import (
    bias_amplification,
    kl_from_uniform,
    normalized_entropy,
    parity_difference,
    proportions,
    shannon_entropy,
    signed_parity,
)
from pytest_t2ibias.metrics.diversity import lexical_vendi
from pytest_t2ibias.metrics.engine import CategoryMetrics, compute_category, metric_ids
from pytest_t2ibias.metrics.presence import any_rate, coverage, distinct_present, missing_rate
from pytest_t2ibias.metrics.registry import METRICS, CategoryData, MetricUnavailable, metric

__all__ = [
    "METRICS",
    "CategoryData",
    "CategoryMetrics",
    "MetricUnavailable",
    "any_rate",
    "bias_amplification",
    "composite_score",
    "compute_category",
    "contextual_association",
    "coverage",
    "distinct_present",
    "kl_from_uniform",
    "lexical_vendi",
    "metric",
    "metric_ids",
    "missing_rate",
    "normalized_entropy",
    "parity_difference",
    "proportions",
    "shannon_entropy",
    "signed_parity",
]
