"""The per-test gate: a category result bound to its policy rules and its approved baseline.

The plugin builds one :class:`Gate` per test; the assertion helpers ask it for checks. The baseline
comparison runs once per test (syrupy writes or compares it), however many helpers use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_t2ibias.baseline import (
    BaselineRecord,
    CorruptBaselineError,
    extension_for,
    parse_baseline,
    staleness,
)
from pytest_t2ibias.judge import Check, judge_bounds, judge_regressions
from pytest_t2ibias.stats import benjamini_hochberg, holm

if TYPE_CHECKING:
    from pytest_t2ibias.compare import Comparison
    from pytest_t2ibias.policy import MetricRule
    from pytest_t2ibias.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

Family = tuple[dict[str, "Comparison"], dict[str, float], float]


@dataclass
class BaselineOutcome:
    """What the baseline comparison found."""

    checks: list[Check] = field(default_factory=list)
    location: str = ""
    missing: bool = False
    stale: list[str] = field(default_factory=list)
    corrupt: str | None = None
    updated: bool = False
    baseline: BaselineRecord | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.corrupt) and not any(c.verdict == "fail" for c in self.checks)


@dataclass
class Gate:
    rules: dict[str, MetricRule]
    snapshot: Any = None  # a syrupy SnapshotAssertion, or None outside pytest
    update: bool = False
    record: Callable[[list[Check]], None] | None = None
    #: stored baseline -> (comparisons, adjusted p-values, alpha) for this test (the run's correction)
    family: Callable[[CategoryResult, BaselineRecord], Family] | None = None
    _baseline: BaselineOutcome | None = None

    def bound_checks(self, result: CategoryResult) -> list[Check]:
        return judge_bounds(result, self.rules)

    def baseline_outcome(self, result: CategoryResult) -> BaselineOutcome:
        """Compare with (or, when updating, write) the approved baseline, once per test."""
        if self._baseline is not None:
            return self._baseline
        outcome = BaselineOutcome()
        self._baseline = outcome
        if self.snapshot is None:
            outcome.missing = True
            return outcome
        current = BaselineRecord.from_result(result)
        regression_rules = {m: r for m, r in self.rules.items() if r.regression is not None}

        def compare(serialized: str, stored_text: str) -> bool:
            outcome.missing = False
            if self.update:
                return False  # approving: syrupy rewrites every baseline with this run's numbers
            try:
                stored = parse_baseline(stored_text, outcome.location)
            except CorruptBaselineError as err:
                outcome.corrupt = str(err)
                return False
            outcome.baseline = stored
            outcome.stale = staleness(stored, current)
            if outcome.stale:
                return False
            comparisons, adjusted, alpha = self.family(result, stored) if self.family else ({}, {}, 0.01)
            outcome.checks = judge_regressions(result, stored, regression_rules, comparisons, adjusted, alpha)
            return not any(c.verdict == "fail" for c in outcome.checks)

        snapshot = self.snapshot.use_extension(extension_for(compare))
        outcome.location = str(
            snapshot.extension.get_location(test_location=snapshot.test_location, index=snapshot.index)
        )
        outcome.missing = True  # stays so when syrupy finds no stored file and never calls `compare`
        passed = snapshot == current
        if self.update and passed and (outcome.missing or not outcome.ok):
            outcome.updated = True
            outcome.missing, outcome.stale, outcome.corrupt, outcome.checks = False, [], None, []
        return outcome


def comparisons_for(
    suite: Suite,
    result: CategoryResult,
    stored: BaselineRecord,
    rules: dict[str, MetricRule],
    margin_test: bool = False,
) -> dict[str, Comparison]:
    """The paired comparison of every metric with a regression rule (skipping metrics without values);
    with ``margin_test`` each also tests that the worsening exceeds the allowed regression."""
    from pytest_t2ibias.compare import compare_metric, with_margin
    from pytest_t2ibias.judge import worsening

    out = {}
    for metric_id, rule in rules.items():
        if rule.regression is None or metric_id not in result.metrics or metric_id not in stored.metrics:
            continue
        try:
            comparison = compare_metric(suite, result, stored, metric_id, seed=result.seed)
        except ValueError:
            continue  # no value on one side: judge_regressions reports it as missing
        if not margin_test:
            out[metric_id] = comparison
            continue
        value, old = result.metrics[metric_id].value, stored.metrics[metric_id].value
        assert isinstance(value, float | int) and isinstance(old, float | int)  # compare_metric checked
        worse_by = worsening(metric_id, result.mode, float(value), float(old))
        out[metric_id] = with_margin(comparison, worse_by, rule.regression.allowed(float(old)))
    return out


def make_local_family(
    suite: Suite, rules: dict[str, MetricRule], alpha: float, margin_test: bool = False
) -> Callable[[CategoryResult, BaselineRecord], Family]:
    """Holm (fail-level) and Benjamini-Hochberg (warn-level) within one test: for tests outside the run's
    family (no marker to find them up front)."""

    def family(result: CategoryResult, stored: BaselineRecord) -> Family:
        comparisons = comparisons_for(suite, result, stored, rules, margin_test)
        adjusted: dict[str, float] = {}
        for severity, correct in (("fail", holm), ("warn", benjamini_hochberg)):
            names = [m for m in comparisons if rules[m].severity == severity]
            adjusted.update(zip(names, correct([comparisons[m].p_value for m in names]), strict=True))
        return comparisons, adjusted, alpha

    return family
