"""Deprecated: moved to :mod:`pytest_t2ibias.judge.baseline` (this module re-exports it for one release)."""

from pytest_t2ibias.judge.baseline import (
    BASELINE_FORMAT,
    COMPARABLE_FIELDS,
    BaselineMetric,
    BaselineRecord,
    CorruptBaselineError,
    parse_baseline,
    staleness,
)

__all__ = [
    "BASELINE_FORMAT",
    "COMPARABLE_FIELDS",
    "BaselineMetric",
    "BaselineRecord",
    "CorruptBaselineError",
    "parse_baseline",
    "staleness",
]
