"""Deprecated: moved to :mod:`pytest_t2ibias.judge.compare` (this module re-exports it for one release)."""

from pytest_t2ibias.judge.compare import (
    N_PAIRED_BOOT,
    UNPAIRABLE,
    Comparison,
    baseline_records,
    compare_metric,
    comparisons_for,
    with_margin,
)

__all__ = [
    "N_PAIRED_BOOT",
    "UNPAIRABLE",
    "Comparison",
    "baseline_records",
    "compare_metric",
    "comparisons_for",
    "with_margin",
]
