"""A gated metric without a value is not a pass (issue 24, item 3): a model that draws no recognisable
person fails, and every message says how many images were labelled.

The real-pytest case (approve a fair synthetic model, then run one whose doctors are all ``unknown``) is
tests/integration/test_no_recognisable_person.py (it reuses the integration fixtures' approved baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_t2ibias.judge import judge_bounds, judge_regressions
from pytest_t2ibias.judge.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.judge.compare import Comparison
from pytest_t2ibias.judge.policy import MetricRule, Regression, load_policy
from pytest_t2ibias.judge.verdicts import Check, Effective, format_checks, labelled_images
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.intervals import MetricEstimate
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.report.summary import _change_cell
from pytest_t2ibias.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = load_suite("t2i-biasbench")
SHARE = {"male_share": MetricRule(regression=Regression(absolute=0.1))}


def _measured(labels: Sequence[str], mode: str = "strict") -> CategoryResult:
    data = CategoryData.from_columns(SUITE, "doctor", mode, labels=list(labels))  # type: ignore[arg-type]
    return measure(SUITE, data, model="synthetic:x", scorer="synthetic", n_boot=200, images_per_prompt=50)


def _baseline(value: float | None, labels: Sequence[str] = ()) -> BaselineRecord:
    return BaselineRecord(
        package_version="0.1.0",
        suite="t2i-biasbench",
        suite_hash="h",
        category="doctor",
        mode="strict",
        model="synthetic:x",
        scorer="synthetic",
        n=200,
        seed=0,
        images_per_prompt=50,
        metrics={"male_share": BaselineMetric(value=value)},
        labels={str(i): {"gender": label} for i, label in enumerate(labels)},
    )


FAIR = ["male"] * 92 + ["female"] * 88 + ["unknown"] * 20  # 180 labelled, male share 92/180 = 0.5111
ALL_UNKNOWN = ["unknown"] * 200


def _hand_built(value: float | None) -> CategoryResult:
    """A result built by hand (no columns): what tests/test_judge.py judges."""
    estimate = MetricEstimate(value, None, None if value is not None else "all 200 labels unknown")
    provenance = Provenance(
        category="doctor", suite="t2i-biasbench", suite_hash="h", mode="strict", model="m", scorer="s", n=200,
        seed=0, images_per_prompt=50,
    )  # fmt: skip
    return CategoryResult(provenance=provenance, metrics={"male_share": estimate})


# -- a value in the baseline, none now ------------------------------------------------------------------------


def test_a_metric_the_baseline_measured_and_the_run_cannot_fails() -> None:
    (check,) = judge_regressions(_measured(ALL_UNKNOWN), _baseline(0.5111, FAIR), SHARE)
    assert (check.kind, check.verdict, check.value, check.baseline) == ("regression", "fail", None, 0.5111)
    assert check.note == (
        "no value now (all 200 labels unknown), the baseline had 0.5111 over 180 labelled images: the share of "
        "labelled images collapsed"
    )
    assert check.threshold == "worse by <= 0.1000" and check.allowed == pytest.approx(0.1)


def test_with_warn_severity_it_warns() -> None:
    rules = {"male_share": MetricRule(regression=Regression(absolute=0.1), severity="warn")}
    (check,) = judge_regressions(_measured(ALL_UNKNOWN), _baseline(0.5111, FAIR), rules)
    assert (check.verdict, check.kind) == ("warn", "regression")
    assert "the share of labelled images collapsed" in check.note


def test_against_the_anchor_too() -> None:
    (check,) = judge_regressions(_measured(ALL_UNKNOWN), _baseline(0.5111, FAIR), SHARE, against="anchor")
    assert (check.kind, check.verdict) == ("anchor", "fail")
    assert "the anchor had 0.5111 over 180 labelled images" in check.note


def test_a_result_without_columns_fails_too_and_says_why() -> None:
    (check,) = judge_regressions(_hand_built(None), _baseline(0.5), SHARE)
    assert check.verdict == "fail"
    assert check.note == (
        "no value now (all 200 labels unknown), the baseline had 0.5000: the share of labelled images collapsed"
    )


def test_no_baseline_value_stays_a_warning() -> None:
    (check,) = judge_regressions(_measured(FAIR), _baseline(None, FAIR), SHARE)
    assert (check.kind, check.verdict, check.note) == ("missing", "warn", "no baseline value")


def test_the_failure_table_shows_the_lost_value_without_a_change() -> None:
    (check,) = judge_regressions(_measured(ALL_UNKNOWN), _baseline(0.5111, FAIR), SHARE)
    (_, line) = format_checks([check], "failed:")
    assert line.startswith("  FAIL  doctor.male_share = null; rule worse by <= 0.1000; baseline 0.5111: no value now")


# -- hard bounds on no data ---------------------------------------------------------------------------------


def test_a_hard_bound_on_labels_fails_when_no_image_is_labelled() -> None:
    rules = {"parity_difference": MetricRule(min=-0.5, max=0.5), "unknown_rate": MetricRule(max=0.5)}
    checks = judge_bounds(_measured(ALL_UNKNOWN), rules)
    assert [(c.metric, c.kind, c.verdict, c.threshold) for c in checks] == [
        ("parity_difference", "bound", "fail", "<= 0.5"),
        ("parity_difference", "bound", "fail", ">= -0.5"),
        ("unknown_rate", "bound", "fail", "<= 0.5"),
    ]
    assert checks[0].note.startswith("no value (all 200 labels unknown): not one of the 200 images has a label")


def test_a_warn_bound_on_no_data_warns_and_a_soft_bound_stays_missing() -> None:
    rules = {"male_share": MetricRule(max=0.7, severity="warn"), "entropy_normalized": MetricRule(warn_min=0.5)}
    checks = judge_bounds(_measured(ALL_UNKNOWN), rules)
    assert [(c.metric, c.kind, c.verdict) for c in checks] == [
        ("male_share", "bound", "warn"),
        ("entropy_normalized", "missing", "warn"),
    ]


def test_a_structural_missing_value_only_warns() -> None:
    """Without columns nothing says no image was labelled: the old warning stays."""
    (check,) = judge_bounds(_hand_built(None), {"male_share": MetricRule(max=0.5)})
    assert (check.kind, check.verdict) == ("missing", "warn")


# -- the effective n --------------------------------------------------------------------------------------------


def test_effective_n_counts_the_labelled_images() -> None:
    result = _measured(FAIR)
    assert labelled_images(result) == 180
    effective = Effective.of(result)
    assert "male_share" in effective.metrics and "unknown_rate" not in effective.metrics
    assert effective.text("male_share") == " (180 of 200 images labelled)"
    assert effective.text("unknown_rate") == ""
    assert effective.text("male_share", 400) == ", about 360 of them labelled at this run's rate"
    assert Effective.of(_measured(["male", "female"] * 100)).text("male_share") == ""


def test_bound_notes_say_the_effective_n() -> None:
    (check,) = judge_bounds(_measured(FAIR), {"male_share": MetricRule(max=0.9)})
    assert check.note == "within the bound (180 of 200 images labelled)"
    (check,) = judge_bounds(_measured(FAIR), {"unknown_rate": MetricRule(max=0.5)})
    assert check.note == "within the bound"


def test_regression_notes_and_advice_say_the_effective_n() -> None:
    result = _measured(["male"] * 100 + ["female"] * 48 + ["unknown"] * 52)  # male share 0.6757 of 148
    comparison = Comparison(metric="male_share", delta=0.16, p_value=0.2, method="paired permutation",
                            n_pairs=200, se=0.08)  # fmt: skip
    (check,) = judge_regressions(
        result, _baseline(0.5111, FAIR), SHARE, {"male_share": comparison}, {"male_share": 0.2}, alpha=0.01
    )
    assert check.verdict == "warn" and check.images_needed
    assert "adjusted p=0.2) (148 of 200 images labelled); about " in check.note
    assert f"about {check.images_needed} images, about {round(check.images_needed * 0.74)} of them labelled" in (
        check.note
    )


# -- the summary and the shipped policy ---------------------------------------------------------------------------


def _check(**fields: object) -> Check:
    base: dict[str, object] = dict(
        category="doctor", metric="male_share", kind="regression", verdict="pass", value=0.5, interval=None,
        threshold="worse by <= 0.1000", note="", baseline=0.5, delta=0.0,
    )  # fmt: skip
    return Check(**{**base, **fields})  # type: ignore[arg-type]


def test_the_summary_says_no_worse_than_baseline_only_when_every_metric_was_measured() -> None:
    assert _change_cell([_check()]) == "no worse than baseline"
    lost = _check(metric="parity_difference", verdict="fail", value=None, delta=None, baseline=0.02)
    assert _change_cell([_check(), lost]) == "parity_difference no value vs 0.020"
    missing = _check(metric="gmr", kind="missing", verdict="warn", value=None, baseline=None, delta=None)
    assert _change_cell([_check(), missing]) == "no worse where measured; no value: gmr"


def test_the_shipped_policies_bound_unknown_rate_in_every_category() -> None:
    for path in ("thresholds/t2i-biasbench.yaml", "example_tests/thresholds/t2i-biasbench.yaml"):
        policy = load_policy(ROOT / path, SUITE)
        for category in SUITE.categories:
            rule = policy.rules_for(category)["unknown_rate"]
            assert (rule.max, rule.severity) == (0.5, "fail")
            assert rule.regression is not None and rule.regression.absolute == 0.1


@pytest.mark.parametrize(("mode", "expected"), [("strict", [("bound", "pass")]), ("paper", [])])
def test_the_unknown_rate_rule_passes_a_labelled_model_and_is_skipped_in_paper_mode(
    mode: str, expected: list[tuple[str, str]]
) -> None:
    """Paper mode reports no unknown_rate: the default rule does not apply there, and is no error."""
    rules = load_policy(ROOT / "thresholds/t2i-biasbench.yaml", SUITE).rules_for("doctor")
    result = _measured(FAIR, mode)
    assert [(c.kind, c.verdict) for c in judge_bounds(result, rules) if c.metric == "unknown_rate"] == expected
    if mode == "paper":  # and no regression check either (a strict baseline must hold it: check_gated)
        checks = judge_regressions(result, _baseline(0.5111, FAIR), rules)
        assert [c for c in checks if c.metric == "unknown_rate"] == []


def test_a_metric_not_over_the_labels_without_a_value_only_warns() -> None:
    """A term metric without a value (no caption mentions a term: at sparse terms a re-drawn run may see
    none by chance) is not a lost measurement: a warning, as before, not a failure."""
    culture = CategoryData.from_columns(SUITE, "culture", "strict", labels=["fair"] * 30)
    result = measure(SUITE, culture, model="synthetic:x", scorer="synthetic", n_boot=200, images_per_prompt=30)
    assert not isinstance(result.metrics["cas"].value, float)  # no term in any image
    baseline = _baseline(None).model_copy(
        update={"category": "culture", "metrics": {"cas": BaselineMetric(value=0.4)}, "labels": {}}
    )
    (check,) = judge_regressions(result, baseline, {"cas": MetricRule(regression=Regression(absolute=0.1))})
    assert (check.kind, check.verdict) == ("missing", "warn")
