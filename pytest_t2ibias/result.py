"""What a bias test gets: one category's metrics with intervals, counts and the per-image records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_t2ibias.metrics.engine import CategoryMetrics, category_data
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.stats import PROPORTION_METRICS, Interval, bootstrap_intervals, wilson_interval
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import MetricValue, Mode

if TYPE_CHECKING:
    from pytest_t2ibias.gate import Gate

#: Bootstrap replicates for metric intervals (seeded: same data, same intervals).
N_BOOT = 1000


@dataclass(frozen=True)
class MetricEstimate:
    """A metric's value, its interval (``None`` for distributions and unavailable metrics), and why
    the value is missing when it is."""

    value: MetricValue
    interval: Interval | None = None
    reason: str | None = None

    def describe(self) -> str:
        if self.value is None:
            return f"null ({self.reason})"
        if isinstance(self.value, dict):
            return ", ".join(f"{g} {p:.3f}" for g, p in sorted(self.value.items(), key=lambda kv: -kv[1]))
        if self.interval is None:
            return f"{self.value:.4f}"
        iv = self.interval
        return f"{self.value:.4f} [{iv.low:.4f}, {iv.high:.4f}] ({iv.confidence:.0%} {iv.method})"


@dataclass
class CategoryResult:
    """One category of one run: everything a gate, a baseline and a report need."""

    category: str
    suite: str
    suite_hash: str
    mode: Mode
    model: str
    scorer: str
    n: int
    metrics: dict[str, MetricEstimate]
    records: list[ImageRecord] = field(default_factory=list)
    seed: int = 0
    images_per_prompt: int = 0
    gate: Gate | None = field(default=None, compare=False, repr=False)

    def value(self, metric_id: str) -> MetricValue:
        return self.metrics[metric_id].value if metric_id in self.metrics else None

    def label_counts(self, attribute: str) -> dict[str, int]:
        return dict(Counter(r.labels.get(attribute, "unknown") for r in self.records))


def with_intervals(
    suite: Suite, metrics: CategoryMetrics, records: list[ImageRecord], mode: Mode, seed: int = 0
) -> dict[str, MetricEstimate]:
    """Attach intervals: Wilson for shares of images, the seeded bootstrap for everything else."""
    data = category_data(suite, metrics.category, records, mode)
    boot = bootstrap_intervals(data, N_BOOT, seed=seed) if records else {}
    out = {}
    for metric_id, value in metrics.metrics.items():
        interval = None
        if isinstance(value, float) and metric_id in PROPORTION_METRICS and metrics.n > 0:
            interval = wilson_interval(round(value * metrics.n), metrics.n)
        elif isinstance(value, float):
            interval = boot.get(metric_id)
        out[metric_id] = MetricEstimate(value, interval, metrics.reasons.get(metric_id))
    return out
