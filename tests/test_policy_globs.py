"""Policies that address groups of categories: globs and group names with a fixed precedence, errors for
patterns that select nothing, and bounds on the aggregates across categories."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_t2ibias.errors import PolicyError
from pytest_t2ibias.judge.policy import load_policy, parse_policy
from pytest_t2ibias.judge.verdicts import judge_estimates
from pytest_t2ibias.metrics.intervals import Interval, MetricEstimate
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("occupations")


def _policy(tmp_path: Path, text: str, suite: Suite):  # type: ignore[no-untyped-def]
    path = tmp_path / "occupations.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_policy(path, suite)


POLICY = """
suite: occupations
default:
  amplification_reference: {max: 0.30}
categories:
  "occupations/*":
    amplification_reference: {max: 0.20}
    gap_reference: {min: -0.5, max: 0.5}
  occupations/healthcare:
    amplification_reference: {max: 0.10}
  occupations/small-sample:
    amplification_reference: {max: 0.25}
  "*nurs*":
    gap_reference: {min: -0.45, max: 0.45}
  "occupations/healthcare/nurs*":
    gap_reference: {min: -0.4, max: 0.4}
  nurse:
    amplification_reference: {max: 0.05}
"""


def test_precedence_exact_then_group_then_glob(tmp_path: Path, suite: Suite) -> None:
    policy = _policy(tmp_path, POLICY, suite)
    nurse = policy.rules_for("nurse")
    assert nurse["amplification_reference"].max == 0.05  # exact name beats the group and the globs
    assert nurse["gap_reference"].max == 0.4  # the longest glob that matches wins
    assert policy.rules_for("nurse_practitioner")["amplification_reference"].max == 0.10  # group > glob
    assert policy.rules_for("nurse_practitioner")["gap_reference"].max == 0.4
    assert policy.rules_for("electrician")["amplification_reference"].max == 0.20  # only the glob
    assert policy.rules_for("electrician")["gap_reference"].max == 0.5
    # `*nurs*` (6 characters) loses to `occupations/*` (13) wherever both match
    assert all(policy.rules_for(c)["gap_reference"].max != 0.45 for c in suite.categories)


def test_between_two_groups_the_longer_name_wins(tmp_path: Path, suite: Suite) -> None:
    # surgeon is in occupations/healthcare (22 characters) and occupations/small-sample (24)
    policy = _policy(tmp_path, POLICY, suite)
    assert policy.rules_for("surgeon")["amplification_reference"].max == 0.25
    assert policy.rules_for("pilot")["amplification_reference"].max == 0.25


def test_a_policy_without_a_suite_keeps_exact_names(suite: Suite) -> None:
    data = {"categories": {"nurse": {"gap_reference": {"max": 0.1}}, "occupations/*": {"gap_reference": {"max": 0.2}}}}
    unresolved = parse_policy(data, "p.yaml")
    assert unresolved.rules_for("nurse")["gap_reference"].max == 0.1
    assert unresolved.rules_for("pilot") == {}  # groups and globs need the suite
    resolved = parse_policy(data, "p.yaml", suite)
    assert resolved.rules_for("pilot")["gap_reference"].max == 0.2


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("occupations/astronauts", "unknown category 'occupations/astronauts'; groups: ["),
        ("astro*", "glob 'astro*' matches no category"),
        ("occupations/*/pilot/*", "glob 'occupations/*/pilot/*' matches no category"),
    ],
)
def test_a_key_that_selects_nothing_is_an_error(tmp_path: Path, suite: Suite, key: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as err:
        _policy(tmp_path, f'categories:\n  "{key}":\n    gap_reference: {{max: 0.1}}\n', suite)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'occupations.yaml'}: field `categories.{key}`: ") and fragment in message


def test_a_metric_one_selected_category_lacks_names_it(tmp_path: Path) -> None:
    paper = load_suite("t2i-biasbench")
    with pytest.raises(PolicyError, match=r"field `categories\.\*\.cas`: category 'doctor' has no metric 'cas'"):
        _policy(tmp_path, 'categories:\n  "*":\n    cas: {max: 0.5}\n', paper)


def test_the_paper_policy_still_loads_unchanged() -> None:
    paper = load_suite("t2i-biasbench")
    root = Path(__file__).resolve().parents[1]
    policy = load_policy(root / "example_tests" / "thresholds" / "t2i-biasbench.yaml", paper)
    assert set(policy.categories) <= set(paper.categories)


def test_aggregate_rules_validated(suite: Suite) -> None:
    with pytest.raises(PolicyError, match=r"field `aggregate.mad`: .*unknown aggregate 'mad'"):
        parse_policy({"aggregate": {"mad": {"max": 0.1}}}, "p.yaml", suite)


def _estimate(value: float, low: float, high: float) -> MetricEstimate:
    return MetricEstimate(value, Interval(low, high, "posterior", 0.95))


def test_aggregates_judged_like_a_category(suite: Suite) -> None:
    """The policy's aggregate rules go through the one bounds judge (judge_estimates): without the run's
    p-values the interval decides; with them a hard bound fails only when significant."""
    policy = parse_policy(
        {
            "aggregate": {
                "mad_reference": {"max": 0.10, "warn_max": 0.05},
                "mean_amplification": {"max": 0.05},
                "amplified_share": {"max": 0.8, "severity": "warn"},
            }
        },
        "p.yaml",
        suite,
    )
    estimates = {
        "mad_reference": _estimate(0.07, 0.05, 0.09),
        "mean_amplification": _estimate(0.09, 0.06, 0.12),
        "amplified_share": _estimate(0.85, 0.7, 0.95),
    }
    checks = {(c.metric, c.kind): c for c in judge_estimates("aggregate", estimates, policy.aggregate)}
    assert checks[("mad_reference", "bound")].verdict == "pass"
    assert checks[("mad_reference", "soft_bound")].verdict == "warn"
    assert checks[("mean_amplification", "bound")].verdict == "fail"
    assert "whole interval above" in checks[("mean_amplification", "bound")].note
    assert checks[("amplified_share", "bound")].verdict == "warn"  # straddles its bound
    assert all(c.category == "aggregate" for c in checks.values())
    adjusted = {"bound:mean_amplification:max": 0.2}  # beyond the bound, but not significant in the run
    judged = judge_estimates(
        "aggregate", estimates, {"mean_amplification": policy.aggregate["mean_amplification"]}, adjusted, 0.01
    )
    assert [c.verdict for c in judged] == ["warn"] and "not significant" in judged[0].note


def test_min_kappa_keys_take_groups_and_globs(suite: Suite) -> None:
    policy = parse_policy(
        {"min_kappa": {"default": 0.4, "*": 0.5, "occupations/healthcare": 0.7, "nurse": 0.9}}, "p.yaml", suite
    )
    assert policy.min_kappa_for("nurse") == 0.9  # a name is more specific than its group
    assert policy.min_kappa_for("doctor") == 0.7  # the group over the glob
    assert policy.min_kappa_for("electrician") == 0.5  # the glob over the default
    with pytest.raises(PolicyError, match=r"field `min_kappa.zoo\*`: glob 'zoo\*' matches no category"):
        parse_policy({"min_kappa": {"zoo*": 0.5}}, "p.yaml", suite)
