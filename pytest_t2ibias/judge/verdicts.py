"""Judge a category's metrics against a policy and an approved baseline: pass, warn or fail, with reasons.

Nothing here knows about images or pytest: it takes metric estimates (values with intervals) and
rules, and returns :class:`Check` records that assertions, the summary and reports print.

Rules (documented in docs/plugin.md):

* hard bound (``min``/``max``): fail (or the rule's severity) only when the whole interval is on the
  wrong side; warn when the interval straddles the bound; pass when it is on the right side. Without
  an interval the point estimate decides.
* soft bound (``warn_min``/``warn_max``): the point estimate beyond it warns.
* regression against the baseline: fails only when the change in the metric's bad direction is
  beyond the allowed regression **and** the paired test of the change (exact McNemar for per-image
  binary outcomes, paired bootstrap otherwise; an unpaired test when images cannot be paired; with the
  policy's ``margin_test`` also a one-sided test that the worsening exceeds the margin) is significant
  after Holm correction across every gated check of the run; beyond the margin but not significant is
  ``inconclusive`` (a warning with the images per prompt that would settle it).
* no value: a metric over the attribute's labels that the baseline (or anchor) measured and this run
  cannot, because no image has a label left, fails with the rule's severity (a model that draws no
  recognisable person is not a pass), and so does a hard bound of a metric over the
  attribute's labels when no image has a label; a metric without a value in the baseline, or missing for
  another reason, warns. Notes of metrics over the labels give the effective n (the labelled images).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import ConfigDict

from pytest_t2ibias.judge.policy import DEFAULT_ALPHA, DEFAULT_EVIDENCE
from pytest_t2ibias.metrics.intervals import Interval, MetricEstimate
from pytest_t2ibias.metrics.registry import METRICS, direction_of, metric_def, unknown_metric, worsening_by

if TYPE_CHECKING:
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.compare import Comparison
    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.result import CategoryResult
    from pytest_t2ibias.types import Mode

Verdict = Literal["pass", "warn", "fail"]
Direction = Literal["lower", "higher", "closer_to_zero", "either"]


@dataclass(frozen=True, kw_only=True)
class Check:
    """One judged rule of one metric of one category."""

    # Stated so every pydantic 2.x publishes the same schema (see metrics.intervals.Interval).
    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    category: str
    metric: str
    kind: Literal["bound", "soft_bound", "regression", "anchor", "missing"]
    verdict: Verdict
    value: float | None
    interval: Interval | None
    threshold: str
    note: str
    baseline: float | None = None
    delta: float | None = None
    allowed: float | None = None
    p_value: float | None = None
    method: str | None = None
    #: an inconclusive check: about how many images (per category) would settle it
    images_needed: int | None = None


_V = TypeVar("_V", float, NDArray[np.float64])


def direction(metric_id: str, mode: Mode) -> Direction:
    """Which way is worse for a metric (the registry's word): strict parity is signed, so worse is further
    from zero; a share of one group changes either way."""
    better = direction_of(metric_id, mode)
    return "either" if better == "even" else better


def worsening(metric_id: str, mode: Mode, value: _V, baseline: float) -> _V:
    """How much worse ``value`` is than ``baseline`` (negative: better); elementwise for an array. The
    registry's rule (:meth:`~pytest_t2ibias.metrics.registry.MetricDef.worsening`), by metric id."""
    return worsening_by(direction_of(metric_id, mode), value, baseline)


def _interval_text(interval: Interval | None) -> str:
    return "" if interval is None else f" [{interval.low:.4f}, {interval.high:.4f}]"


#: Prefix of a hard bound's key in a family.
BOUND = "bound:"


def bound_key(metric_id: str, side: str) -> str:
    """The key of a hard bound's test in a family of p-values (beside the regressions' metric ids)."""
    return f"{BOUND}{metric_id}:{side}"


def judge_bounds(
    result: CategoryResult,
    rules: dict[str, MetricRule],
    adjusted: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> list[Check]:
    """Absolute bounds of every ruled metric of a category (:func:`judge_estimates` on its metrics), each
    note saying the effective n of a metric over the attribute's labels when images were left unlabelled.

    A hard bound (``min``/``max``) of a metric with no value cannot be checked. When the metric is over the
    attribute's labels and **no** image of the category got a label (every label ``unknown``: the model drew
    no recognisable person, or the scorer recognised none), the bound fails with the rule's severity: the
    measurement itself failed. Any other missing value (no images, no attribute, no caption mentioning a
    term) is structural and only warns, as a soft bound without a value does.
    """
    effective = Effective.of(result)
    checks = judge_estimates(result.category, result.metrics, rules, adjusted, alpha, effective=effective)
    if effective.labelled != 0 or not effective.n:
        return checks
    out = []
    for check in checks:
        rule = rules.get(check.metric)
        if rule is None or check.kind != "missing" or check.metric not in effective.metrics:
            out.append(check)
            continue
        reason = check.note.replace("no value: ", "", 1)
        note = (
            f"no value ({reason}): not one of the {effective.n} images has a label, so the bound cannot be met "
            "(the model drew no recognisable person, or the scorer saw none)"
        )
        sides = [(f"{symbol} {bound}", bound) for symbol, bound in (("<=", rule.max), (">=", rule.min))]
        hard = [threshold for threshold, bound in sides if bound is not None]
        out += [replace(check, kind="bound", verdict=rule.severity, threshold=t, note=note) for t in hard]
        if not hard:  # a soft bound only: nothing to fail
            out.append(check)
    return out


def judge_estimates(
    category: str,
    estimates: Mapping[str, MetricEstimate],
    rules: Mapping[str, MetricRule],
    adjusted: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    *,
    effective: Effective | None = None,
) -> list[Check]:
    """Absolute bounds of every ruled metric of ``estimates`` (a category's, or the aggregates across
    categories, ``category="aggregate"``).

    A hard bound (``min``/``max``) fails only when the point value is beyond it and its test (the p-value
    of "the metric is within the bound", :func:`~pytest_t2ibias.metrics.intervals.bound_p_value`, corrected
    with the run's family: ``adjusted[bound_key(metric, side)]``) is significant at ``alpha``; beyond it but
    not significant is inconclusive (a warning). Without a test (no p-value given) the interval decides:
    fail when it lies wholly beyond. Within the bound, it passes only when the whole interval is within
    (a pass needs evidence); an interval that straddles the bound warns. A soft bound (``warn_min``/
    ``warn_max``) warns when the point value is beyond it. ``effective``: the category's labelled images,
    named in the notes of the metrics over them (:class:`Effective`).
    """
    adjusted = adjusted or {}
    effective = effective or Effective()
    checks = []
    for metric_id, rule in rules.items():
        estimate = estimates.get(metric_id)
        if estimate is None:
            continue  # the policy's default names a metric this category does not report
        value, interval = estimate.value, estimate.interval
        has_bounds = any(b is not None for b in (rule.min, rule.max, rule.warn_min, rule.warn_max))
        if not has_bounds:
            continue
        if not isinstance(value, float | int):
            checks.append(_missing(category, metric_id, f"no value: {estimate.reason}"))
            continue
        labelled = effective.text(metric_id)
        low, high = (interval.low, interval.high) if interval is not None else (value, value)
        for bound, side in ((rule.max, "max"), (rule.min, "min")):
            if bound is None:
                continue
            beyond_point = value > bound if side == "max" else value < bound
            beyond_all = low > bound if side == "max" else high < bound
            beyond_some = high > bound if side == "max" else low < bound
            symbol, where = ("<=", "above") if side == "max" else (">=", "below")
            p_adj = adjusted.get(bound_key(metric_id, side))
            verdict: Verdict
            if p_adj is not None and beyond_point:
                if p_adj < alpha:
                    verdict, note = rule.severity, f"{where} the bound and significant (adjusted p={p_adj:.2g})"
                else:
                    verdict = "warn"
                    note = f"inconclusive: {where} the bound but not significant (adjusted p={p_adj:.2g})"
            elif p_adj is None and beyond_all:
                verdict, note = rule.severity, f"whole interval {where} the bound"
            elif beyond_some:
                verdict, note = "warn", "interval straddles the bound: more images would settle it"
            else:
                verdict, note = "pass", "within the bound"
            note += labelled
            checks.append(
                Check(
                    category=category,
                    metric=metric_id,
                    kind="bound",
                    verdict=verdict,
                    value=float(value),
                    interval=interval,
                    threshold=f"{symbol} {bound}",
                    note=note,
                    p_value=p_adj,
                )
            )
        for bound, side in ((rule.warn_max, "max"), (rule.warn_min, "min")):
            if bound is None:
                continue
            beyond = value > bound if side == "max" else value < bound
            symbol = "<=" if side == "max" else ">="
            checks.append(
                Check(
                    category=category,
                    metric=metric_id,
                    kind="soft_bound",
                    verdict="warn" if beyond else "pass",
                    value=float(value),
                    interval=interval,
                    threshold=f"{symbol} {bound} (warn)",
                    note=("beyond the warning band" if beyond else "within the warning band") + labelled,
                )
            )
    return checks


#: One-sided 95 % normal quantile: the upper bound of a worsening a pass must stay under.
_Z95 = 1.6448536269514722


def judge_regressions(
    result: CategoryResult,
    baseline: BaselineRecord,
    rules: dict[str, MetricRule],
    comparisons: dict[str, Comparison] | None = None,
    adjusted: dict[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    *,
    evidence: float = DEFAULT_EVIDENCE,
    family_size: int = 1,
    against: Literal["baseline", "anchor"] = "baseline",
) -> list[Check]:
    """Each ruled metric against its approved value (or, ``against="anchor"``, against the anchor: the
    first approved baseline, with the rule's cumulative allowance).

    * **fail** (or warn, with ``severity: warn``): the worsening is beyond the allowed regression **and**
      the test of "no change" is significant after the run's correction (``adjusted`` p-values);
    * **pass**: the worsening is within the allowed regression **and** the data rule it out beyond
      ``evidence`` times the allowance (its one-sided 95 % upper bound, ``Comparison.upper``, is within
      it): a pass needs evidence;
    * **inconclusive** (a warning) otherwise: beyond the allowance but not significant, or within it but
      too uncertain, with the images that would settle it (at the level the correction gives the check,
      ``alpha / family_size``).
    """
    comparisons = comparisons or {}
    adjusted = adjusted or {}
    effective = Effective.of(result)
    checks = []
    for metric_id, rule in rules.items():
        if rule.regression is None or metric_id not in result.metrics:
            continue
        estimate = result.metrics[metric_id]
        stored = baseline.metrics.get(metric_id)
        old = stored.value if stored is not None else None
        value = estimate.value
        if not isinstance(old, float | int):
            checks.append(_missing(result.category, metric_id, f"no {against} value"))
            continue
        regression = rule.regression
        allowed = regression.allowed(float(old)) if against == "baseline" else regression.cumulative_allowed(float(old))
        threshold = f"worse by <= {allowed:.4f}" + (" than the anchor" if against == "anchor" else "")
        if not isinstance(value, float | int) and not _lost_labels(metric_id, estimate.reason, effective):
            # no value for another reason (no caption mentions a term: at sparse terms a re-drawn run can
            # see none by chance): nothing to compare, a warning as before
            checks.append(_missing(result.category, metric_id, f"no value: {estimate.reason}"))
            continue
        if not isinstance(value, float | int):
            # the approved run measured it over its labels and this one has no label left: not a pass (a
            # model that draws no recognisable person has no gender metrics at all), so it fails with the
            # rule's severity
            checks.append(
                Check(
                    category=result.category,
                    metric=metric_id,
                    kind="regression" if against == "baseline" else "anchor",
                    verdict=rule.severity,
                    value=None,
                    interval=None,
                    threshold=threshold,
                    note=_lost_note(
                        metric_id, estimate.reason, float(old), against, effective, _baseline_labelled(baseline, result)
                    ),
                    baseline=float(old),
                    allowed=allowed,
                )
            )
            continue
        delta = worsening(metric_id, result.mode, float(value), float(old))
        labelled = effective.text(metric_id)
        comparison = comparisons.get(metric_id)
        p_adj = adjusted.get(metric_id)
        test = "" if comparison is None else _test_text(comparison, p_adj)
        level = alpha / max(family_size, 1)
        needed: int | None = None
        if comparison is None or p_adj is None:
            verdict: Verdict = "warn"
            note = f"inconclusive: no test of the change was possible{labelled}"
        elif delta > allowed and p_adj < alpha:
            verdict, note = rule.severity, f"real regression: beyond the margin and significant{test}{labelled}"
        elif delta > allowed:
            verdict = "warn"
            needed = comparison.images_needed(level, allowed=allowed, worse=delta)
            note = (
                f"inconclusive: beyond the margin but not significant{test}{labelled}"
                f"{_settle(needed, result, effective.text(metric_id, needed))}"
            )
        else:
            upper = comparison.upper if comparison.upper is not None else delta + _Z95 * (comparison.se or 0.0)
            if upper <= evidence * allowed:
                verdict, note = "pass", f"within the allowed regression{test}{labelled}"
            else:
                verdict = "warn"
                needed = _images_for_evidence(comparison, delta, evidence * allowed)
                note = (
                    f"inconclusive: within the allowed regression, but the data cannot rule out a worsening of "
                    f"{upper:.4f} (a pass needs it within {evidence:g} x the allowed {allowed:.4f}){test}{labelled}"
                    f"{_settle(needed, result, effective.text(metric_id, needed))}"
                )
        checks.append(
            Check(
                category=result.category,
                metric=metric_id,
                kind="regression" if against == "baseline" else "anchor",
                verdict=verdict,
                value=float(value),
                interval=estimate.interval,
                threshold=threshold,
                note=note,
                baseline=float(old),
                delta=delta,
                allowed=allowed,
                p_value=p_adj,
                method=None if comparison is None else comparison.method,
                images_needed=needed or None,
            )
        )
    return checks


def _images_for_evidence(comparison: Comparison, delta: float, limit: float) -> int | None:
    """Images at which the upper bound of this worsening would be within ``limit`` (spread ~ 1/sqrt(n))."""
    if not comparison.se or limit <= delta or comparison.n_pairs == 0:
        return None
    return math.ceil(comparison.n_pairs * (_Z95 * comparison.se / (limit - delta)) ** 2)


def _settle(needed: int | None, result: CategoryResult, labelled: str = "") -> str:
    """The images-needed advice; ``labelled``: how many of them would be labelled at this run's rate
    (:meth:`Effective.text` of the advice)."""
    if not needed:
        return ""
    return (
        f"; about {needed} images{labelled} ({_per_prompt(needed, result)} per prompt) would settle it: approve "
        "the baseline model at that size first (docs/statistics.md, more images)"
    )


@dataclass(frozen=True)
class Effective:
    """A category's effective n: of its ``n`` images, the ``labelled`` ones (a label of the attribute that
    is not ``unknown``; ``None``: the category has no attribute, or the result does not say). ``metrics``:
    the metrics computed over the attribute's labels (``unknown_rate``, over every image, is not one)."""

    n: int = 0
    labelled: int | None = None
    metrics: frozenset[str] = frozenset()

    @classmethod
    def of(cls, result: CategoryResult) -> Effective:
        labelled = labelled_images(result)
        if labelled is None:
            return cls(result.n)
        return cls(result.n, labelled, frozenset(m for m in result.metrics if _over_labels(m, result)))

    def text(self, metric_id: str, images: int | None = None) -> str:
        """`` (148 of 200 images labelled)`` for a metric over the labels when some image is unlabelled;
        with ``images`` (advice), about how many of them would be labelled at this run's rate."""
        if metric_id not in self.metrics or self.labelled is None or not self.n or self.labelled >= self.n:
            return ""
        if images is not None:
            return f", about {round(images * self.labelled / self.n)} of them labelled at this run's rate"
        return f" ({self.labelled} of {self.n} images labelled)"


def labelled_images(result: CategoryResult) -> int | None:
    """How many of the category's images have a label of its attribute (not ``unknown``; in paper mode not
    the attribute's unmatched label either); ``None`` without an attribute or anything to count from.

    Counted from the columns the result keeps; a result without them falls back on ``unknown_rate``.
    """
    data = result.data
    if data is not None:
        if data.attribute is None:
            return None
        codes = data.label_codes()
        if not len(codes.codes):
            return 0
        known = np.array([data.is_known(name) for name in codes.names], dtype=bool)
        return int(known[codes.codes].sum())
    unknown = unknown_metric()
    rate = result.value(unknown) if unknown is not None else None
    if isinstance(rate, float | int) and not isinstance(rate, bool):
        return round((1.0 - float(rate)) * result.n)
    return None


def _over_labels(metric_id: str, result: CategoryResult) -> bool:
    """Whether a metric is computed over the attribute's labels (so over the labelled images only)."""
    definition = METRICS.get(metric_id)
    if definition is not None and definition.outcome is not None and definition.outcome.kind == "unknown":
        return False  # the share of unlabelled images is over every image
    if result.data is None:  # nothing tells which metrics read the labels
        return False
    spec = result.data.spec
    definition = metric_def(metric_id, spec)
    # a metric of another attribute (`fd@ethnicity`) is over that attribute's labels: the count of the
    # attribute under test's would be a wrong number in its message, so it gets none
    return definition is not None and definition.view is None and definition.over_labels(spec)


def _baseline_labelled(baseline: BaselineRecord, result: CategoryResult) -> int | None:
    """How many of the approved run's images had a label of the category's attribute (None: unknown)."""
    data = result.data
    if data is None or data.attribute is None or data.spec.attribute is None:
        return None
    attribute = data.spec.attribute
    return sum(data.is_known(labels.get(attribute, "unknown")) for labels in baseline.labels.values())


def _lost_labels(metric_id: str, reason: str | None, effective: Effective) -> bool:
    """Whether a metric without a value lost it because its category's labels are all ``unknown``."""
    return metric_id in effective.metrics or "labels unknown" in (reason or "")


def _lost_note(
    metric_id: str, reason: str | None, old: float, against: str, effective: Effective, before: int | None
) -> str:
    """Why a metric the approved run measured and this run cannot fails; ``before``: the approved run's
    labelled images (None: unknown)."""
    now = f"no value now ({reason})" if reason else "no value now"
    over = "" if before is None else f" over {before} labelled image{'s' if before != 1 else ''}"
    return f"{now}, the {against} had {old:.4f}{over}: the share of labelled images collapsed"


def _missing(category: str, metric_id: str, note: str) -> Check:
    return Check(
        category=category,
        metric=metric_id,
        kind="missing",
        verdict="warn",
        value=None,
        interval=None,
        threshold="-",
        note=note,
    )


def _test_text(comparison: Comparison, p_adj: float | None) -> str:
    shown = "-" if p_adj is None else f"{p_adj:.2g}"
    if comparison.paired:
        return f" ({comparison.method} over {comparison.n_pairs} pairs, adjusted p={shown})"
    why = (
        "the baseline stores no per-image data for this metric"
        if comparison.method == "unpaired intervals"
        else "the images cannot be paired by seed"
    )
    return f" ({comparison.method} over {comparison.n_pairs} images, adjusted p={shown}; unpaired: {why})"


def _per_prompt(images: int, result: CategoryResult) -> int:
    prompts = max(1, round(result.n / result.images_per_prompt)) if result.images_per_prompt else 1
    return -(-images // prompts)


def scorer_problem(result: CategoryResult, require_card: bool, min_kappa: float | None) -> str | None:
    """Why the scorer cannot be trusted for the category's attribute under the policy (None: it can).

    With ``require_card``, a run without a scorer card for the attribute; with ``min_kappa``, a card whose
    Cohen's kappa for it is below the minimum (or undefined).
    """
    attribute = result.data.spec.attribute if result.data is not None else None
    if attribute is None or (not require_card and min_kappa is None):
        return None
    card = result.scorer_card
    entry = card.attributes.get(attribute) if card is not None else None
    if entry is None:
        if require_card:
            return f"no scorer card for attribute {attribute!r} (the policy requires one: t2ibias audit-scorer)"
        return None
    kappa = entry.kappa.value
    # written as "not >=" so that a NaN kappa (or a NaN minimum) fails the check: NaN < x is False
    if min_kappa is not None and (kappa is None or not kappa >= min_kappa):
        shown = "undefined" if kappa is None else f"{kappa:.3f}"
        return f"the scorer's kappa for {attribute!r} is {shown}, below the policy's min_kappa {min_kappa}"
    return None


def inconclusive_for_scorer(checks: list[Check], result: CategoryResult, reason: str | None) -> list[Check]:
    """``checks`` with every check of a metric built on the attribute's labels made inconclusive (a
    warning that says ``reason``): a scorer too unreliable for the attribute never lets them pass (or fail)."""
    if reason is None:
        return checks
    spec = result.data.spec if result.data is not None else None
    out = []
    for check in checks:
        if spec is None:  # nothing tells which metrics read the labels: all of them may
            on_labels = True
        else:
            definition = metric_def(check.metric, spec)
            on_labels = definition is not None and definition.over_labels(spec)
        if on_labels and check.kind != "missing":
            check = replace(check, verdict="warn", note=f"inconclusive: {reason} (was {check.verdict}: {check.note})")
        out.append(check)
    return out


def worst_of(verdicts: Iterable[str]) -> Verdict:
    """The worst of some verdicts (fail, then warn, else pass): the one rule every report and result uses.

    >>> worst_of(["pass", "warn"]), worst_of([]), worst_of(["warn", "fail"])
    ('warn', 'pass', 'fail')
    """
    found = set(verdicts)
    return "fail" if "fail" in found else "warn" if "warn" in found else "pass"


def verdict_of(checks: list[Check]) -> Verdict:
    """The worst verdict of a set of checks."""
    return worst_of(c.verdict for c in checks)


def format_checks(checks: list[Check], title: str) -> list[str]:
    """A table of the non-passing checks: metric, value [interval], rule, baseline, delta, verdict, why."""
    rows = [c for c in checks if c.verdict != "pass"]
    if not rows:
        return []
    lines = [title]
    for c in rows:
        value = "null" if c.value is None else f"{c.value:.4f}{_interval_text(c.interval)}"
        base = "" if c.baseline is None else f"; baseline {c.baseline:.4f}"
        base += "" if c.baseline is None or c.delta is None else f", worse by {c.delta:+.4f}"
        lines.append(f"  {c.verdict.upper():<5} {c.category}.{c.metric} = {value}; rule {c.threshold}{base}: {c.note}")
    return lines
