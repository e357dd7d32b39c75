"""Deprecated: moved to :mod:`pytest_t2ibias.metrics.result` (this module re-exports it for one release)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_t2ibias.metrics.engine import CategoryMetrics, category_data
from pytest_t2ibias.metrics.intervals import N_BOOT as N_BOOT
from pytest_t2ibias.metrics.intervals import MetricEstimate as MetricEstimate
from pytest_t2ibias.metrics.intervals import with_intervals as _with_intervals
from pytest_t2ibias.metrics.result import CategoryResult as CategoryResult
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.types import Mode

__all__ = ["N_BOOT", "CategoryResult", "MetricEstimate", "with_intervals"]

if TYPE_CHECKING:
    from pytest_t2ibias.suites.schema import Suite


def with_intervals(
    suite: Suite, metrics: CategoryMetrics, records: list[ImageRecord], mode: Mode, seed: int = 0
) -> dict[str, MetricEstimate]:
    """Deprecated: :func:`pytest_t2ibias.metrics.intervals.with_intervals` over the records' columns."""
    return _with_intervals(category_data(suite, metrics.category, records, mode), metrics, seed=seed)
