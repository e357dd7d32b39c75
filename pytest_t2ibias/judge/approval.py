"""Whether an approval may replace a baseline: refused only on evidence.

Approving keeps the anchor (the first approved baseline), so that small approved steps cannot walk a model
far from it. An approval used to be refused whenever a point value was past the cumulative allowance from
the anchor, with no test: an unchanged model re-approved with a fifth of its images re-drawn was refused
in four runs of ten at 50 images, and a ``severity: warn`` rule refused it too. Now the run is judged
against the anchor exactly as a failing anchor check is (the same test of the change, the run's
correction, the cumulative allowance: :func:`~pytest_t2ibias.judge.verdicts.judge_regressions` with
``against="anchor"``), and:

* a **fail** verdict of a fail-severity rule refuses the approval (evidence that the model walked past
  the cumulative allowance);
* a drift past the allowance that is not significant, or a real drift of a ``severity: warn`` rule, is
  approved with a warning naming the drift and the images that would settle it;
* anything else is approved silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_t2ibias.judge.verdicts import Check, judge_regressions

if TYPE_CHECKING:
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.family import RegressionFamily
    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.result import CategoryResult

__all__ = ["drifts", "judge_approval", "refusals"]


def judge_approval(
    result: CategoryResult, anchor: BaselineRecord, rules: dict[str, MetricRule], family: RegressionFamily
) -> list[Check]:
    """The run against the anchor its approval would keep: one ``anchor`` check per regression rule.

    ``family`` is the test's share of the run's family built with ``approving=True``
    (:func:`~pytest_t2ibias.judge.family.gather`): its anchor comparisons and their adjusted p-values.
    """
    regression = {m: r for m, r in rules.items() if r.regression is not None}
    return judge_regressions(
        result,
        anchor,
        regression,
        family.anchor,
        family.anchor_adjusted(),
        family.alpha,
        evidence=family.evidence,
        family_size=family.size,
        against="anchor",
    )


def refusals(checks: list[Check]) -> list[str]:
    """One line per check that refuses the approval: a fail verdict (fail-severity rules only give one)."""
    return [_line(c) for c in checks if c.verdict == "fail"]


def drifts(checks: list[Check]) -> list[Check]:
    """The checks an approval is granted with a warning: a drift past the cumulative allowance that the
    data do not show (inconclusive), or a real one under a ``severity: warn`` rule."""
    return [
        c
        for c in checks
        if c.verdict == "warn"
        and (c.kind == "missing" or (c.delta is not None and c.allowed is not None and c.delta > c.allowed))
    ]


def _line(check: Check) -> str:
    if check.value is None or check.baseline is None or check.delta is None or check.allowed is None:
        return f"{check.category}.{check.metric}: {check.note}"
    return (
        f"{check.category}.{check.metric} = {check.value:.4f} is worse than the anchor's {check.baseline:.4f} "
        f"by {check.delta:+.4f} (cumulative allowance {check.allowed:.4f}): {check.note}"
    )
