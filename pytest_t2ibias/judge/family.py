"""The family of a run's checks and its one multiple-comparison correction.

Every gated check of a run is a hypothesis test: each regression against its baseline, each regression
against the anchor (the first approved baseline), each hard bound. Failing a build when any of two dozen
tests at alpha = 1% rejects would fail far more often than 1% of the builds. So the p-values of every
fail-level check of the run are adjusted together with the policy's ``correction`` (Holm: family-wise
error rate): the hard bounds among themselves within their share of alpha (``bounds_alpha``, default
0.2), the regression and anchor checks among themselves within the rest, so the run as a whole holds
alpha (a Bonferroni split between the two, Holm within each). Those of the warn-level checks are adjusted
with its ``warn_correction`` (Benjamini-Hochberg: false discovery rate). :func:`build_family` is the one
routine that does it, for the whole run (the plugin, up front) and for a single test that is outside the
run's family; :func:`gather` collects one test's tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pytest_t2ibias.judge.baseline import BaselineRecord, anchor_staleness
from pytest_t2ibias.judge.policy import DEFAULT_ALPHA, DEFAULT_EVIDENCE, Policy
from pytest_t2ibias.judge.stats import benjamini_hochberg, holm
from pytest_t2ibias.judge.verdicts import BOUND, bound_key

if TYPE_CHECKING:
    from pytest_t2ibias.judge.compare import Comparison
    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.aggregate import Aggregates
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.suites.schema import Suite

Severity = Literal["fail", "warn"]
#: Prefix of an anchor comparison's key in a family (beside the regressions' metric ids and the bounds').
ANCHOR = "anchor:"


@dataclass(frozen=True, kw_only=True)
class TestChecks:
    """One test's tests before the correction: comparisons with its baseline and its anchor, the raw
    p-values of its hard bounds, and the severity of each (keyed as in :attr:`RegressionFamily.adjusted`)."""

    comparisons: dict[str, Comparison] = field(default_factory=dict)
    anchor: dict[str, Comparison] = field(default_factory=dict)
    bounds: dict[str, float] = field(default_factory=dict)
    severities: dict[str, Severity] = field(default_factory=dict)
    anchor_stale: list[str] = field(default_factory=list)

    def p_values(self) -> dict[str, float]:
        return {
            **{m: c.p_value for m, c in self.comparisons.items()},
            **{ANCHOR + m: c.p_value for m, c in self.anchor.items()},
            **self.bounds,
        }


TestChecks.__test__ = False  # type: ignore[attr-defined]  # a class named Test*, not a test


@dataclass(frozen=True, kw_only=True)
class RegressionFamily:
    """One test's share of the family: its comparisons, their adjusted p-values, and the level.

    ``adjusted`` holds the regressions under their metric ids, the anchor comparisons under
    ``anchor:<metric>`` and the bounds under :func:`~pytest_t2ibias.judge.verdicts.bound_key`; ``size`` is
    the number of checks ``alpha`` is spread over as thinly as a regression's first Holm step sees it
    (its checks over the share of alpha they get).
    """

    comparisons: dict[str, Comparison] = field(default_factory=dict)
    anchor: dict[str, Comparison] = field(default_factory=dict)
    adjusted: dict[str, float] = field(default_factory=dict)
    alpha: float = DEFAULT_ALPHA
    evidence: float = DEFAULT_EVIDENCE
    size: int = 1
    anchor_stale: list[str] = field(default_factory=list)

    def anchor_adjusted(self) -> dict[str, float]:
        return {k.removeprefix(ANCHOR): v for k, v in self.adjusted.items() if k.startswith(ANCHOR)}


def correct(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values by ``method``: ``holm``, ``bh`` (Benjamini-Hochberg) or ``none``."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return list(p_values)
    raise ValueError(f"`method` must be 'holm', 'bh' or 'none', got {method!r}")


def gather(
    suite: Suite,
    result: CategoryResult,
    stored: BaselineRecord | None,
    rules: Mapping[str, MetricRule],
    policy: Policy | None,
    *,
    approving: bool = False,
) -> TestChecks:
    """One test's tests: its regressions against ``stored`` (when given and comparable), against the
    anchor ``stored`` keeps (when it has one), and its hard bounds (when the result keeps its data).

    ``approving``: the run is about to replace ``stored`` (any stored baseline, stale or not); it is not
    compared with ``stored`` but only with the anchor the approval would keep (``stored.as_anchor()``),
    with the cumulative allowance: the same test, correction and level as a failing anchor check, so an
    approval is refused only on evidence (:func:`pytest_t2ibias.judge.approval.judge_approval`).
    """
    from pytest_t2ibias.judge.compare import comparisons_for
    from pytest_t2ibias.metrics.intervals import bound_p_value

    margin = policy.margin_test if policy else False
    regression_rules = {m: r for m, r in rules.items() if r.regression is not None}
    comparisons: dict[str, Comparison] = {}
    anchor: dict[str, Comparison] = {}
    stale: list[str] = []
    if stored is not None and approving:
        kept = stored.as_anchor()
        stale = anchor_staleness(kept, result.provenance)
        if not stale:
            anchor = comparisons_for(suite, result, kept, regression_rules, margin, cumulative=True)
    elif stored is not None:
        comparisons = comparisons_for(suite, result, stored, regression_rules, margin)
        if stored.anchor is not None:
            stale = anchor_staleness(stored.anchor, stored)
            if not stale:
                anchor = comparisons_for(suite, result, stored.anchor, regression_rules, margin, cumulative=True)
    bounds: dict[str, float] = {}
    data = result.data
    if data is None and result.records:
        data = result.columns(suite)
    severities: dict[str, Severity] = {m: regression_rules[m].severity for m in comparisons}
    severities.update({ANCHOR + m: regression_rules[m].severity for m in anchor})
    for metric_id, rule in rules.items():
        estimate = result.metrics.get(metric_id)
        if data is None or estimate is None or not isinstance(estimate.value, float):
            continue
        sides: tuple[tuple[float | None, Literal["max", "min"]], ...] = ((rule.max, "max"), (rule.min, "min"))
        for bound, side in sides:
            if bound is None:
                continue
            try:
                bounds[bound_key(metric_id, side)] = bound_p_value(data, metric_id, bound, side, seed=result.seed)
            except ValueError:
                continue  # no value to test: judge_bounds says so
            severities[bound_key(metric_id, side)] = rule.severity
    return TestChecks(comparisons=comparisons, anchor=anchor, bounds=bounds, severities=severities, anchor_stale=stale)


def gather_aggregates(aggregates: Aggregates, rules: Mapping[str, MetricRule]) -> TestChecks:
    """The hard bounds of the policy's ``aggregate`` section as one test's tests: each bound's p-value
    from the aggregate's posterior draws (``metrics.aggregate.bound_p_value``), one more check beside the
    categories' in the run's family."""
    from pytest_t2ibias.metrics.aggregate import bound_p_value

    bounds: dict[str, float] = {}
    severities: dict[str, Severity] = {}
    for metric_id, rule in rules.items():
        estimate = aggregates.metrics.get(metric_id)
        if estimate is None or not isinstance(estimate.value, float):
            continue  # no value: judge_estimates says so
        for bound, side in ((rule.max, "max"), (rule.min, "min")):
            if bound is not None:
                key = bound_key(metric_id, side)
                bounds[key] = bound_p_value(aggregates, metric_id, bound, side)  # type: ignore[arg-type]
                severities[key] = rule.severity
    return TestChecks(bounds=bounds, severities=severities)


def build_family(tests: Mapping[str, TestChecks], policy: Policy | None) -> dict[str, RegressionFamily]:
    """Adjust every test's p-values (keyed by test id) together, by severity: the run's one correction."""
    policy = policy or Policy()
    adjusted: dict[str, dict[str, float]] = {test: {} for test in tests}
    sizes: dict[str, int] = {}
    raw = {t: checks.p_values() for t, checks in tests.items()}
    for severity, method in (("fail", policy.correction), ("warn", policy.warn_correction)):
        keys = [(t, k) for t, checks in tests.items() for k in checks.p_values() if checks.severities[k] == severity]
        bounds = [(t, k) for t, k in keys if k.startswith(BOUND)]
        others = [(t, k) for t, k in keys if not k.startswith(BOUND)]
        share = policy.bounds_alpha if severity == "fail" and bounds and others else None
        groups = (
            [(bounds, share), (others, None if share is None else 1 - share)] if share is not None else [(keys, None)]
        )
        for group, part in groups:
            values = correct([raw[t][k] for t, k in group], method)
            for (test, key), value in zip(group, values, strict=True):
                # a share s of alpha: p / s against alpha is p against s * alpha
                adjusted[test][key] = value if part is None else (min(1.0, value / part) if part > 0 else 1.0)
        # the size that spreads alpha as thinly as the regressions' part of it is spread
        sizes[severity] = math.ceil(len(others) / (1 - share)) if share is not None and share < 1 else len(keys)
    return {
        test: RegressionFamily(
            comparisons=dict(checks.comparisons),
            anchor=dict(checks.anchor),
            adjusted=adjusted[test],
            alpha=policy.alpha,
            evidence=policy.evidence,
            size=max(sizes.get("fail", 0), 1),
            anchor_stale=list(checks.anchor_stale),
        )
        for test, checks in tests.items()
    }
