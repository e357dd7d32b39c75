"""The metric engine: pure numpy functions, a registry of the benchmark's metrics, and an engine that
computes them from sufficient statistics (counts), with intervals.

Nothing here imports torch.
"""

from pytest_t2ibias.metrics.association import contextual_association
from pytest_t2ibias.metrics.composite import composite_score
from pytest_t2ibias.metrics.counts import Stats
from pytest_t2ibias.metrics.data import CategoryData
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
from pytest_t2ibias.metrics.engine import CategoryMetrics, category_data, compute_category, compute_data, metric_ids
from pytest_t2ibias.metrics.intervals import (
    Interval,
    MetricEstimate,
    bootstrap_intervals,
    wilson_interval,
    with_intervals,
)
from pytest_t2ibias.metrics.presence import any_rate, coverage, distinct_present, missing_rate
from pytest_t2ibias.metrics.registry import (
    METRICS,
    MetricDef,
    MetricUnavailable,
    Outcome,
    count_metric,
    metric,
    metric_def,
    share_of,
    shares,
)
from pytest_t2ibias.metrics.result import CategoryResult, measure

__all__ = [
    "METRICS",
    "CategoryData",
    "CategoryMetrics",
    "CategoryResult",
    "Interval",
    "MetricDef",
    "MetricEstimate",
    "MetricUnavailable",
    "Outcome",
    "Stats",
    "any_rate",
    "bias_amplification",
    "bootstrap_intervals",
    "category_data",
    "composite_score",
    "compute_category",
    "compute_data",
    "contextual_association",
    "count_metric",
    "coverage",
    "distinct_present",
    "kl_from_uniform",
    "lexical_vendi",
    "measure",
    "metric",
    "metric_def",
    "metric_ids",
    "missing_rate",
    "normalized_entropy",
    "parity_difference",
    "proportions",
    "shannon_entropy",
    "share_of",
    "shares",
    "signed_parity",
    "wilson_interval",
    "with_intervals",
]
