"""Judging metrics: absolute bounds on intervals, regressions by margin and adjusted significance, Holm per test.

Results, baselines, comparisons and rules are built by hand, so every verdict here follows from numbers
written in the test.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from scipy.stats import norm

from pytest_t2ibias.judge import Check, direction, judge_bounds, judge_regressions, worsening
from pytest_t2ibias.judge.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.judge.compare import Comparison
from pytest_t2ibias.judge.family import RegressionFamily, build_family, gather
from pytest_t2ibias.judge.policy import MetricRule, Policy, Regression
from pytest_t2ibias.judge.stats import Interval
from pytest_t2ibias.metrics.intervals import MetricEstimate
from pytest_t2ibias.metrics.result import CategoryResult
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.types import Mode


def _result(metrics: dict[str, MetricEstimate], mode: Mode = "strict", n: int = 200) -> CategoryResult:
    provenance = Provenance(
        category="doctor",
        suite="t2i-biasbench",
        suite_hash="h",
        mode=mode,
        model="synthetic:x",
        scorer="synthetic",
        n=n,
        seed=0,
        images_per_prompt=50,  # 200 images: 4 prompts
    )
    return CategoryResult(provenance=provenance, metrics=metrics)


def _estimate(value: float | None, low: float | None = None, high: float | None = None) -> MetricEstimate:
    interval = None if low is None or high is None else Interval(low, high, "bootstrap", 0.95)
    return MetricEstimate(value, interval, None if value is not None else "all 200 labels unknown")


def _baseline(values: dict[str, float | None], mode: Mode = "strict") -> BaselineRecord:
    return BaselineRecord(
        package_version="0.1.0",
        suite="t2i-biasbench",
        suite_hash="h",
        category="doctor",
        mode=mode,
        model="synthetic:x",
        scorer="synthetic",
        n=200,
        seed=0,
        images_per_prompt=50,
        metrics={m: BaselineMetric(value=v) for m, v in values.items()},
        labels={},
    )


def _bound_check(rule: MetricRule, value: float | None, low: float | None = None, high: float | None = None) -> Check:
    (check,) = judge_bounds(_result({"composite": _estimate(value, low, high)}), {"composite": rule})
    return check


# -- hard bounds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "bound", "beyond", "straddle", "inside", "note"),
    [
        ("max", 0.5, (0.55, 0.70), (0.45, 0.60), (0.30, 0.45), "whole interval above the bound"),
        ("min", 0.5, (0.30, 0.45), (0.40, 0.55), (0.55, 0.70), "whole interval below the bound"),
    ],
)
class TestHardBounds:
    def test_whole_interval_beyond_fails(
        self, side: str, bound: float, beyond: tuple, straddle: tuple, inside: tuple, note: str
    ) -> None:
        check = _bound_check(MetricRule(**{side: bound}), sum(beyond) / 2, *beyond)
        assert (check.kind, check.verdict, check.note) == ("bound", "fail", note)
        assert check.threshold == f"{'<=' if side == 'max' else '>='} {bound}"
        assert check.interval == Interval(*beyond, "bootstrap", 0.95)

    def test_whole_interval_beyond_warns_with_warn_severity(
        self, side: str, bound: float, beyond: tuple, straddle: tuple, inside: tuple, note: str
    ) -> None:
        check = _bound_check(MetricRule(**{side: bound, "severity": "warn"}), sum(beyond) / 2, *beyond)
        assert (check.verdict, check.note) == ("warn", note)

    def test_straddling_interval_warns(
        self, side: str, bound: float, beyond: tuple, straddle: tuple, inside: tuple, note: str
    ) -> None:
        # the point estimate is beyond the bound, but the interval reaches back over it
        point = straddle[1] - 0.01 if side == "max" else straddle[0] + 0.01
        check = _bound_check(MetricRule(**{side: bound}), point, *straddle)
        assert check.verdict == "warn"
        assert check.note == "interval straddles the bound: more images would settle it"

    def test_interval_inside_passes(
        self, side: str, bound: float, beyond: tuple, straddle: tuple, inside: tuple, note: str
    ) -> None:
        check = _bound_check(MetricRule(**{side: bound}), sum(inside) / 2, *inside)
        assert (check.verdict, check.note) == ("pass", "within the bound")

    def test_without_interval_the_point_estimate_decides(
        self, side: str, bound: float, beyond: tuple, straddle: tuple, inside: tuple, note: str
    ) -> None:
        assert _bound_check(MetricRule(**{side: bound}), sum(beyond) / 2).verdict == "fail"
        assert _bound_check(MetricRule(**{side: bound}), sum(inside) / 2).verdict == "pass"


def test_interval_touching_the_max_from_inside_passes() -> None:
    assert _bound_check(MetricRule(max=0.5), 0.45, 0.40, 0.50).verdict == "pass"


def test_interval_starting_at_the_max_straddles() -> None:
    assert _bound_check(MetricRule(max=0.5), 0.55, 0.50, 0.60).verdict == "warn"


def test_min_and_max_give_one_check_each() -> None:
    checks = judge_bounds(
        _result({"composite": _estimate(0.45, 0.35, 0.55)}), {"composite": MetricRule(min=0.4, max=0.5)}
    )
    assert [(c.threshold, c.verdict) for c in checks] == [("<= 0.5", "warn"), (">= 0.4", "warn")]


# -- soft bounds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "beyond", "within"),
    [({"warn_max": 0.3}, 0.35, 0.25), ({"warn_min": 0.3}, 0.25, 0.35)],
    ids=["warn_max", "warn_min"],
)
class TestSoftBounds:
    def test_point_beyond_warns_even_when_the_interval_reaches_back(
        self, rule: dict[str, float], beyond: float, within: float
    ) -> None:
        check = _bound_check(MetricRule(**rule), beyond, 0.1, 0.5)
        assert (check.kind, check.verdict, check.note) == ("soft_bound", "warn", "beyond the warning band")
        assert check.threshold.endswith("0.3 (warn)")

    def test_point_within_passes_even_when_the_interval_reaches_out(
        self, rule: dict[str, float], beyond: float, within: float
    ) -> None:
        check = _bound_check(MetricRule(**rule), within, 0.1, 0.5)
        assert (check.kind, check.verdict, check.note) == ("soft_bound", "pass", "within the warning band")

    def test_never_fails_whatever_the_severity(self, rule: dict[str, float], beyond: float, within: float) -> None:
        assert _bound_check(MetricRule(**rule, severity="fail"), beyond, beyond, beyond).verdict == "warn"


def test_hard_and_soft_bound_together() -> None:
    checks = judge_bounds(
        _result({"composite": _estimate(0.4, 0.35, 0.45)}), {"composite": MetricRule(max=0.55, warn_max=0.3)}
    )
    assert [(c.kind, c.verdict) for c in checks] == [("bound", "pass"), ("soft_bound", "warn")]


# -- what is not judged ---------------------------------------------------------------------------------------


def test_metric_without_a_value_is_a_missing_warning() -> None:
    check = _bound_check(MetricRule(max=0.5), None)
    assert (check.kind, check.verdict, check.value, check.threshold) == ("missing", "warn", None, "-")
    assert check.note == "no value: all 200 labels unknown"


def test_metric_the_category_does_not_report_is_skipped() -> None:
    assert judge_bounds(_result({"composite": _estimate(0.2)}), {"cas": MetricRule(max=0.5)}) == []


def test_rule_with_only_a_regression_gives_no_bound_check() -> None:
    rules = {"composite": MetricRule(regression=Regression(absolute=0.05))}
    assert judge_bounds(_result({"composite": _estimate(0.9, 0.8, 1.0)}), rules) == []


# -- regressions ----------------------------------------------------------------------------------------------

RULES = {"composite": MetricRule(regression=Regression(absolute=0.05))}
#: composite (lower is better) approved at 0.30; the candidate at 0.40 is 0.10 worse, twice the margin.
BASELINE = _baseline({"composite": 0.30})
WORSE = _result({"composite": _estimate(0.40, 0.33, 0.47)})
BOOT = Comparison(metric="composite", delta=0.10, p_value=0.001, method="paired permutation", n_pairs=200,
                  se=0.02)  # fmt: skip


def _regression(
    result: CategoryResult = WORSE,
    comparison: Comparison | None = BOOT,
    adjusted: float | None = 0.002,
    rules: dict[str, MetricRule] = RULES,
    baseline: BaselineRecord = BASELINE,
    alpha: float = 0.01,
) -> Check:
    comparisons = {} if comparison is None else {comparison.metric: comparison}
    p_adj = {} if adjusted is None else {"composite": adjusted}
    (check,) = judge_regressions(result, baseline, rules, comparisons, p_adj, alpha)
    return check


def test_significant_regression_beyond_the_margin_fails() -> None:
    check = _regression()
    assert (check.kind, check.verdict, check.method) == ("regression", "fail", "paired permutation")
    assert check.note.startswith("real regression: beyond the margin and significant")
    assert "(paired permutation over 200 pairs, adjusted p=0.002)" in check.note
    assert (check.value, check.baseline, check.allowed, check.p_value) == (0.40, 0.30, 0.05, 0.002)
    assert check.delta == pytest.approx(0.10)
    assert check.threshold == "worse by <= 0.0500"


def test_significant_regression_with_warn_severity_warns() -> None:
    rules = {"composite": MetricRule(regression=Regression(absolute=0.05), severity="warn")}
    check = _regression(rules=rules)
    assert check.verdict == "warn"
    assert check.note.startswith("real regression")


def _images_for_power(
    delta: float, se: float, n: int, allowed: float, alpha: float, one_sided: bool = True, spread: float | None = None
) -> int:
    """The gate's power model written out independently: the smallest n' where the measured change, spread
    ``spread`` (default ``se``) about ``delta``, lands beyond both the margin and the test's critical value
    z * ``se`` with chance 0.9; both spreads ~ 1/sqrt(n)."""
    z = norm.ppf(1 - alpha) if one_sided else norm.ppf(1 - alpha / 2)
    spread = spread or se
    if allowed < delta < z * se:  # advice is given only in runs whose change fell in this window
        delta = max(delta, _median_unbiased(delta, allowed, z * se, spread))
    for images in range(1, 10**7):
        scale = math.sqrt(n / images)
        if norm.sf((max(allowed, z * se * scale) - delta) / (spread * scale)) >= 0.9:
            return images
    raise AssertionError("not reached")


def _median_unbiased(d: float, low: float, high: float, spread: float) -> float:
    """The worsening whose change, truncated to (low, high), has median d (scipy's truncated normal)."""
    from scipy.optimize import brentq
    from scipy.stats import truncnorm

    def gap(w: float) -> float:
        return float(truncnorm((low - w) / spread, (high - w) / spread, loc=w, scale=spread).cdf(d)) - 0.5

    return float(brentq(gap, d - 6 * spread, high + 6 * spread))


def test_regression_beyond_the_margin_not_significant_is_inconclusive() -> None:
    wide = Comparison(metric="composite", delta=0.10, p_value=0.2, method="paired permutation", n_pairs=200, se=0.06)
    check = _regression(comparison=wide, adjusted=0.2)
    # a paired permutation test's change spreads about its mean by sqrt(se^2 - delta^2 / n), not se
    images = _images_for_power(0.10, 0.06, 200, 0.05, 0.01, spread=math.sqrt(0.06**2 - 0.10**2 / 200))
    assert check.verdict == "warn"
    assert check.note.startswith("inconclusive: beyond the margin but not significant")
    assert "adjusted p=0.2" in check.note
    assert f"about {images} images ({math.ceil(images / 4)} per prompt) would settle it" in check.note


def test_images_needed_use_the_level_the_correction_gives_the_check() -> None:
    wide = Comparison(metric="composite", delta=0.10, p_value=0.2, method="paired permutation", n_pairs=200, se=0.06)
    comparisons, p_adj = {"composite": wide}, {"composite": 0.2}
    (alone,) = judge_regressions(WORSE, BASELINE, RULES, comparisons, p_adj, 0.01)
    (in_a_family,) = judge_regressions(WORSE, BASELINE, RULES, comparisons, p_adj, 0.01, family_size=12)
    images = _images_for_power(0.10, 0.06, 200, 0.05, 0.01 / 12, spread=math.sqrt(0.06**2 - 0.10**2 / 200))
    assert f"about {images} images" in in_a_family.note
    assert images > _images_for_power(0.10, 0.06, 200, 0.05, 0.01)
    assert alone.note != in_a_family.note


def test_inconclusive_mcnemar_regression_asks_for_the_images_that_settle_it() -> None:
    # male_share (either way is worse) from 0.50 to 0.60, 30 of 200 pairs discordant: spread sqrt(30) / 200
    se = math.sqrt(30) / 200
    comparison = Comparison(
        metric="male_share", delta=0.10, p_value=0.03, method="mcnemar", n_pairs=200, discordant=0.15, se=se
    )
    rules = {"male_share": MetricRule(regression=Regression(absolute=0.05))}
    result = _result({"male_share": _estimate(0.60)})
    (check,) = judge_regressions(
        result, _baseline({"male_share": 0.50}), rules, {"male_share": comparison}, {"male_share": 0.06}, 0.01
    )
    # the measured change spreads by the Wald spread sqrt((psi - delta^2) / n) about the true change
    images = _images_for_power(0.10, se, 200, 0.05, 0.01, spread=math.sqrt((0.15 - 0.10**2) / 200))
    assert check.verdict == "warn"
    assert "(mcnemar over 200 pairs, adjusted p=0.06)" in check.note
    assert f"about {images} images ({math.ceil(images / 4)} per prompt)" in check.note


def test_adjusted_p_equal_to_alpha_is_not_significant() -> None:
    assert _regression(adjusted=0.01).verdict == "warn"


def test_regression_within_the_margin_passes_when_the_data_rule_out_a_large_one() -> None:
    # worsening 0.04, spread 0.02: upper bound 0.04 + 1.645 * 0.02 = 0.073 <= 2 x 0.05
    check = _regression(result=_result({"composite": _estimate(0.34)}), adjusted=0.0001)
    assert check.verdict == "pass"
    assert check.note.startswith("within the allowed regression")
    assert check.delta == pytest.approx(0.04)


def test_a_pass_needs_evidence() -> None:
    # the same worsening with a spread of 0.05 (few images): its upper bound 0.122 exceeds 1.5 x 0.05
    wide = Comparison(metric="composite", delta=0.04, p_value=0.4, method="paired permutation", n_pairs=15, se=0.05)
    check = _regression(result=_result({"composite": _estimate(0.34)}), comparison=wide, adjusted=0.4)
    assert check.verdict == "warn"
    assert check.note.startswith(
        "inconclusive: within the allowed regression, but the data cannot rule out a worsening of 0.1222 "
        "(a pass needs it within 1.5 x the allowed 0.0500)"
    )
    images = math.ceil(15 * (1.6448536269514722 * 0.05 / (0.075 - 0.04)) ** 2)
    assert f"about {images} images" in check.note
    # a policy asking less evidence passes it
    (lenient,) = judge_regressions(
        _result({"composite": _estimate(0.34)}), BASELINE, RULES, {"composite": wide}, {"composite": 0.4}, 0.01,
        evidence=3.0,
    )  # fmt: skip
    assert lenient.verdict == "pass"
    # the comparison's own upper bound, when it has one, is what decides
    bounded = replace(wide, upper=0.07)
    assert (
        _regression(result=_result({"composite": _estimate(0.34)}), comparison=bounded, adjusted=0.4).verdict == "pass"
    )


def test_identical_images_pass() -> None:
    same = Comparison(metric="composite", delta=0.0, p_value=1.0, method="paired permutation", n_pairs=15, se=0.0)
    check = _regression(result=_result({"composite": _estimate(0.30)}), comparison=same, adjusted=1.0)
    assert check.verdict == "pass"


def test_improvement_passes_with_a_negative_worsening() -> None:
    check = _regression(result=_result({"composite": _estimate(0.10)}), adjusted=1e-9)
    assert check.verdict == "pass"
    assert check.delta == pytest.approx(-0.20)


def test_regression_exactly_at_the_margin_passes() -> None:
    rules = {"composite": MetricRule(regression=Regression(absolute=0.25))}
    assert _regression(result=_result({"composite": _estimate(0.5)}), rules=rules, adjusted=0.0).verdict == "pass"


def test_relative_margin_is_a_fraction_of_the_baseline() -> None:
    rules = {"composite": MetricRule(regression=Regression(relative=0.5))}  # allowed 0.15 of 0.30
    check = _regression(rules=rules)
    assert (check.allowed, check.verdict) == (pytest.approx(0.15), "pass")


def test_regression_without_a_test_is_inconclusive() -> None:
    for comparison, adjusted in ((None, None), (BOOT, None)):
        check = _regression(comparison=comparison, adjusted=adjusted)
        assert check.verdict == "warn"
        assert check.note == "inconclusive: no test of the change was possible"


@pytest.mark.parametrize(
    ("method", "why"),
    [
        ("unpaired intervals", "unpaired: the baseline stores no per-image data for this metric"),
        ("permutation", "unpaired: the images cannot be paired by seed"),
    ],
)
def test_unpaired_comparisons_say_why(method: str, why: str) -> None:
    unpaired = Comparison(metric="composite", delta=0.10, p_value=0.001, method=method, n_pairs=0, se=0.05)
    check = _regression(comparison=unpaired)
    assert check.verdict == "fail"
    assert check.method == method
    assert why in check.note


@pytest.mark.parametrize(
    ("baseline", "result", "note"),
    [
        (_baseline({"entropy": 0.5}), WORSE, "no baseline value"),  # (the gate calls such a file corrupt first)
        (_baseline({"composite": None}), WORSE, "no baseline value"),
    ],
    ids=["not_in_baseline", "null_in_baseline"],
)
def test_regression_without_a_baseline_value_is_a_missing_warning(
    baseline: BaselineRecord, result: CategoryResult, note: str
) -> None:
    check = _regression(result=result, baseline=baseline)
    assert (check.kind, check.verdict, check.note) == ("missing", "warn", note)


def test_regression_with_a_baseline_value_and_none_now_fails() -> None:
    """A value lost since the approval is not a pass (issue 24; tests/test_no_value_fails.py)."""
    check = _regression(result=_result({"composite": _estimate(None)}))
    assert (check.kind, check.verdict, check.value, check.baseline) == ("regression", "fail", None, 0.30)
    assert check.note == (
        "no value now (all 200 labels unknown), the baseline had 0.3000: the share of labelled images collapsed"
    )


def test_rule_without_regression_or_metric_not_reported_is_skipped() -> None:
    rules = {"composite": MetricRule(max=0.5), "cas": MetricRule(regression=Regression(absolute=0.1))}
    assert judge_regressions(WORSE, BASELINE, rules, {"composite": BOOT}, {"composite": 0.001}) == []


# -- which way is worse ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "mode", "way"),
    [
        ("composite", "strict", "lower"),
        ("unknown_rate", "strict", "lower"),
        ("hallucination", "paper", "lower"),
        ("parity_difference", "paper", "lower"),  # the paper's parity is an absolute gap
        ("parity_difference", "strict", "closer_to_zero"),  # strict parity is signed
        ("entropy_normalized", "strict", "higher"),
        ("car", "strict", "higher"),
        ("vendi", "paper", "higher"),
        ("puzzle_ratio", "strict", "higher"),  # context ratios: not registered, named by their suffix
        ("male_share", "strict", "either"),  # a share of one group: a change either way is a change
        ("representation_parity", "strict", "either"),
    ],
)
def test_direction(metric: str, mode: Mode, way: str) -> None:
    assert direction(metric, mode) == way


@pytest.mark.parametrize(
    ("metric", "mode", "value", "baseline", "worse_by"),
    [
        ("composite", "strict", 0.40, 0.30, 0.10),
        ("composite", "strict", 0.20, 0.30, -0.10),
        ("entropy_normalized", "strict", 0.70, 0.90, 0.20),
        ("entropy_normalized", "strict", 0.95, 0.90, -0.05),
        ("parity_difference", "strict", -0.30, 0.20, 0.10),  # crossed zero and ended further from it
        ("parity_difference", "strict", 0.10, -0.20, -0.10),  # crossed zero and ended closer to it
        ("parity_difference", "strict", -0.40, -0.10, 0.30),
        ("parity_difference", "paper", 0.10, 0.30, -0.20),
        ("male_share", "strict", 0.60, 0.50, 0.10),
        ("male_share", "strict", 0.40, 0.50, 0.10),
        ("male_share", "paper", 0.50, 0.50, 0.0),
    ],
)
def test_worsening(metric: str, mode: Mode, value: float, baseline: float, worse_by: float) -> None:
    assert worsening(metric, mode, value, baseline) == pytest.approx(worse_by, abs=1e-12)


def test_signed_parity_regression_is_judged_by_distance_from_zero() -> None:
    # strict parity from +0.05 to -0.25: the value went down, but it is 0.20 further from parity
    rules = {"parity_difference": MetricRule(regression=Regression(absolute=0.1))}
    comparison = Comparison(
        metric="parity_difference", delta=-0.30, p_value=0.0001, method="paired bootstrap", n_pairs=200, se=0.05
    )
    (check,) = judge_regressions(
        _result({"parity_difference": _estimate(-0.25)}),
        _baseline({"parity_difference": 0.05}),
        rules,
        {"parity_difference": comparison},
        {"parity_difference": 0.0002},
    )
    assert check.delta == pytest.approx(0.20)
    assert check.verdict == "fail"


# -- Holm within one test -------------------------------------------------------------------------------------


def local_family(suite: Any, rules: dict[str, MetricRule], policy: Policy | None = None):  # type: ignore[no-untyped-def]
    """What the plugin does for a test outside the run's family: gather its tests, then the one correction."""

    def family(result: CategoryResult, stored: BaselineRecord) -> RegressionFamily:
        return build_family({"test": gather(suite, result, stored, rules, policy)}, policy)["test"]

    return family


FAMILY_RULES = {
    "composite": MetricRule(regression=Regression(absolute=0.05)),
    "hallucination": MetricRule(regression=Regression(absolute=0.02)),
    "gmr": MetricRule(max=0.5),  # no regression rule: not in the family
}


def _family_checks(
    monkeypatch: pytest.MonkeyPatch, suite: Any, raw: dict[str, float], policy: Policy | None = None
) -> tuple[dict[str, float], dict[str, Check]]:
    """Run a test's own family with comparisons whose raw p-values are ``raw``, then judge."""
    deltas = {"composite": 0.10, "hallucination": 0.05}

    def fake_compare(suite: Any, result: CategoryResult, stored: BaselineRecord, metric: str, seed: int = 0):  # type: ignore[no-untyped-def]
        # no standard error: with_margin leaves the raw p-value alone, so this tests Holm by itself
        return Comparison(
            metric=metric, delta=deltas[metric], p_value=raw[metric], method="paired bootstrap", n_pairs=200
        )

    monkeypatch.setattr("pytest_t2ibias.judge.compare.compare_metric", fake_compare)
    result = _result({"composite": _estimate(0.40), "hallucination": _estimate(0.15), "gmr": _estimate(0.2)})
    baseline = _baseline({"composite": 0.30, "hallucination": 0.10, "gmr": 0.2})
    family = local_family(suite, FAMILY_RULES, policy)(result, baseline)
    comparisons, adjusted, alpha = family.comparisons, family.adjusted, family.alpha
    assert set(comparisons) == {"composite", "hallucination"}
    assert alpha == (policy.alpha if policy else 0.01)
    checks = judge_regressions(result, baseline, FAMILY_RULES, comparisons, adjusted, alpha)
    return adjusted, {c.metric: c for c in checks}


def test_local_family_holm_fails_one_and_leaves_the_other_inconclusive(monkeypatch, suite) -> None:  # type: ignore[no-untyped-def]
    # Holm over two: 2 * 0.004 = 0.008 < 0.01 rejects; then max(0.008, 1 * 0.012) = 0.012 does not
    adjusted, checks = _family_checks(monkeypatch, suite, {"composite": 0.004, "hallucination": 0.012})
    assert adjusted == pytest.approx({"composite": 0.008, "hallucination": 0.012})
    assert checks["composite"].verdict == "fail"
    assert checks["composite"].note.startswith("real regression")
    assert "paired bootstrap" in checks["composite"].note
    assert checks["hallucination"].verdict == "warn"
    assert checks["hallucination"].note.startswith("inconclusive")
    assert "adjusted p=0.012" in checks["hallucination"].note


def test_local_family_holm_step_down_rejects_both(monkeypatch, suite) -> None:  # type: ignore[no-untyped-def]
    # raw 0.006 and 0.004: Bonferroni would give 0.012 and 0.008 (one rejected); Holm steps down to
    # max(2 * 0.004, 1 * 0.006) = 0.008 for the second, and rejects both
    adjusted, checks = _family_checks(monkeypatch, suite, {"composite": 0.006, "hallucination": 0.004})
    assert adjusted == pytest.approx({"composite": 0.008, "hallucination": 0.008})
    assert [checks[m].verdict for m in ("composite", "hallucination")] == ["fail", "fail"]


def test_local_family_adjusts_raw_p_values_upwards(monkeypatch, suite) -> None:  # type: ignore[no-untyped-def]
    # each alone would be significant at 0.01; together, after Holm, neither is
    adjusted, checks = _family_checks(monkeypatch, suite, {"composite": 0.009, "hallucination": 0.008})
    assert adjusted == pytest.approx({"composite": 0.016, "hallucination": 0.016})
    assert {c.verdict for c in checks.values()} == {"warn"}


def test_local_family_skips_metrics_without_a_value(suite) -> None:  # type: ignore[no-untyped-def]
    result = _result({"composite": _estimate(None), "hallucination": _estimate(0.15)})
    baseline = _baseline({"composite": 0.30, "hallucination": 0.10})
    rules = {m: FAMILY_RULES[m] for m in ("composite", "hallucination")}
    # composite has no value (skipped); hallucination has no per-image labels here: unpaired
    family = local_family(suite, rules)(result, baseline)
    comparisons, adjusted = family.comparisons, family.adjusted
    assert list(comparisons) == ["hallucination"]
    assert comparisons["hallucination"].method == "unpaired intervals"
    assert adjusted == {"hallucination": comparisons["hallucination"].p_value}


def test_local_family_honours_the_policys_correction(monkeypatch, suite) -> None:  # type: ignore[no-untyped-def]
    # `correction: none` leaves the raw p-values alone (the same routine as the run's family)
    raw = {"composite": 0.009, "hallucination": 0.008}
    adjusted, checks = _family_checks(monkeypatch, suite, raw, Policy(correction="none", warn_correction="none"))
    assert adjusted == raw
    assert {c.verdict for c in checks.values()} == {"fail"}


def test_local_family_uses_the_policys_alpha(monkeypatch, suite) -> None:  # type: ignore[no-untyped-def]
    raw = {"composite": 0.009, "hallucination": 0.008}
    _, checks = _family_checks(monkeypatch, suite, raw, Policy(alpha=0.05))
    assert {c.verdict for c in checks.values()} == {"fail"}  # Holm gives 0.016 each: below 0.05


def test_bounds_and_regressions_share_alpha() -> None:
    """Holm among the bounds within ``bounds_alpha`` of alpha, among the regressions within the rest."""
    from pytest_t2ibias.judge.family import TestChecks, build_family
    from pytest_t2ibias.judge.policy import Policy
    from pytest_t2ibias.judge.stats import holm

    def comparison(p: float) -> Comparison:
        return Comparison(metric="m", delta=0.1, p_value=p, method="mcnemar", n_pairs=100, se=0.01)

    regressions = {"a": 0.001, "b": 0.02, "c": 0.5}
    bounds = {"bound:x:max": 0.0004, "bound:y:min": 0.3}
    checks = TestChecks(
        comparisons={k: comparison(p) for k, p in regressions.items()},
        bounds=bounds,
        severities=dict.fromkeys([*regressions, *bounds], "fail"),  # type: ignore[arg-type]
    )
    family = build_family({"t": checks}, Policy(bounds_alpha=0.2))["t"]
    expected_r = [min(1.0, p / 0.8) for p in holm(list(regressions.values()))]
    expected_b = [min(1.0, p / 0.2) for p in holm(list(bounds.values()))]
    assert [family.adjusted[k] for k in regressions] == pytest.approx(expected_r)
    assert [family.adjusted[k] for k in bounds] == pytest.approx(expected_b)
    assert family.size == math.ceil(3 / 0.8)  # alpha spread over the regressions' share: 0.8 alpha / 3
    # without bounds the regressions get all of alpha
    alone = TestChecks(comparisons=checks.comparisons, severities=dict.fromkeys(regressions, "fail"))  # type: ignore[arg-type]
    plain = build_family({"t": alone}, Policy(bounds_alpha=0.2))["t"]
    assert [plain.adjusted[k] for k in regressions] == pytest.approx(holm(list(regressions.values())))
    assert plain.size == 3
