"""Threshold policies: the shipped ``thresholds/t2i-biasbench.yaml`` loads against the built-in suite and
encodes the paper's bands; ``rules_for`` merges defaults and overrides; every malformed policy fails with
a :class:`PolicyError` naming the file, the field path and the bad value.

The bands are from docs/t2ibiasbench-spec.md, section 3 (composite low <= 0.30, moderate 0.31-0.55,
high > 0.55; bias amplification > 1.0 is amplification). Malformed policies are written into ``tmp_path``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_t2ibias.judge.policy import (
    MetricRule,
    Policy,
    PolicyError,
    Regression,
    find_policy,
    load_policy,
    parse_policy,
)
from pytest_t2ibias.suites import Suite, load_suite

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = ROOT / "thresholds"
SHIPPED = THRESHOLDS / "t2i-biasbench.yaml"
SUITE = "t2i-biasbench"
CATEGORIES = ["beauty", "doctor", "culture", "animal", "nature"]

# Metrics a rule may name, per category: the spec's table in section 3 plus the paper's extras, without
# the distribution `representation_parity`; every category also gets `unknown_rate` (strict mode) and
# `vendi_embedding`, `clip_score` (image scorers).
ALWAYS = ["entropy", "entropy_normalized", "gmr", "iemr", "hallucination", "vendi", "clip_proxy", "composite"]
EXTRAS = ["unknown_rate", "vendi_embedding", "clip_score"]
RULE_METRICS = {
    "beauty": [*ALWAYS, "parity_difference", "bias_amplification", "kl_divergence", "cas", *EXTRAS],
    "doctor": [*ALWAYS, "parity_difference", "bias_amplification", "male_share", *EXTRAS],
    "culture": [*ALWAYS, "parity_difference", "kl_divergence", "cas", "car", *EXTRAS],
    "animal": [*ALWAYS, "unique_count", "puzzle_ratio", "lab_ratio", *EXTRAS],
    "nature": [*ALWAYS, "cas", "unique_count", "morning_light_ratio", *EXTRAS],
}


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(SUITE)


@pytest.fixture(scope="module")
def shipped(suite: Suite) -> Policy:
    return load_policy(SHIPPED, suite)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(tmp_path: Path, suite: Suite, text: str) -> tuple[Path, str]:
    path = _write(tmp_path, "my_policy.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policy(path, suite)
    return path, str(info.value)


def _assert_names(message: str, path: Path, field: str, value: str) -> None:
    __tracebackhide__ = True
    assert message.startswith(f"{path}: field `{field}`: "), message
    assert value in message, message


# --- the shipped policy ---------------------------------------------------------------------------------


def test_shipped_policy_loads_against_builtin_suite(shipped: Policy) -> None:
    assert shipped.suite == SUITE
    assert shipped.alpha == 0.01
    assert set(shipped.categories) == set(CATEGORIES)


def test_find_policy_finds_shipped_policy(suite: Suite, shipped: Policy) -> None:
    found = find_policy(THRESHOLDS, suite)
    assert found is not None
    policy, path = found
    assert path == SHIPPED
    assert policy == shipped


def test_shipped_composite_bands_are_the_papers(shipped: Policy) -> None:
    composite = shipped.default["composite"]
    assert (composite.warn_max, composite.max, composite.severity) == (0.30, 0.55, "fail")
    assert composite.min is None and composite.warn_min is None
    for category in CATEGORIES:  # no category overrides the paper's bands
        assert shipped.rules_for(category)["composite"] == composite


@pytest.mark.parametrize("category", ["beauty", "doctor"])
def test_shipped_bias_amplification_fails_above_one(shipped: Policy, category: str) -> None:
    rule = shipped.rules_for(category)["bias_amplification"]
    assert (rule.max, rule.severity) == (1.0, "fail")


def test_shipped_policy_names_only_metrics_of_each_category(shipped: Policy) -> None:
    for category in CATEGORIES:
        assert set(shipped.rules_for(category)) <= set(RULE_METRICS[category]), category


# --- merging ---------------------------------------------------------------------------------------------


def test_rules_for_category_rule_replaces_default_of_same_metric(suite: Suite) -> None:
    data = {
        "default": {
            "composite": {"warn_max": 0.3, "max": 0.55, "regression": {"absolute": 0.05}},
            "gmr": {"regression": {"relative": 0.1}, "severity": "warn"},
        },
        "categories": {"doctor": {"composite": {"max": 0.4}, "male_share": {"min": 0.3, "max": 0.7}}},
    }
    policy = parse_policy(data, "my_policy.yaml", suite)
    doctor = policy.rules_for("doctor")
    assert list(doctor) == ["composite", "gmr", "male_share"]
    # the whole rule is replaced: the default's warn_max and regression do not carry over
    assert doctor["composite"] == MetricRule(max=0.4)
    assert doctor["gmr"] == policy.default["gmr"]
    assert doctor["male_share"] == MetricRule(min=0.3, max=0.7)
    # other categories, and the default itself, are untouched
    assert policy.rules_for("beauty") == policy.default
    assert policy.default["composite"].max == 0.55


def test_rules_for_shipped_doctor_merges_defaults_and_overrides(shipped: Policy) -> None:
    doctor = shipped.rules_for("doctor")
    assert set(doctor) == set(shipped.default) | set(shipped.categories["doctor"])
    for metric_id, rule in shipped.default.items():
        assert doctor[metric_id] is rule
    for metric_id, rule in shipped.categories["doctor"].items():
        assert doctor[metric_id] is rule


# --- regression tolerance ----------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", [0.0, 0.4, -0.4, 2.0])
def test_regression_absolute_ignores_baseline(baseline: float) -> None:
    assert Regression(absolute=0.05).allowed(baseline) == 0.05


@pytest.mark.parametrize(("baseline", "allowed"), [(0.4, 0.04), (-0.4, 0.04), (2.0, 0.2), (0.0, 0.0)])
def test_regression_relative_is_a_fraction_of_the_baseline(baseline: float, allowed: float) -> None:
    assert Regression(relative=0.1).allowed(baseline) == pytest.approx(allowed)


# --- metric ids a policy accepts -------------------------------------------------------------------------


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_metric_of_a_category_is_accepted(suite: Suite, category: str) -> None:
    rules = {metric_id: {"max": 1.0} for metric_id in RULE_METRICS[category]}
    policy = parse_policy({"categories": {category: rules}}, "my_policy.yaml", suite)
    assert list(policy.rules_for(category)) == RULE_METRICS[category]


@pytest.mark.parametrize("metric_id", EXTRAS)
def test_strict_and_scorer_metrics_are_accepted_in_default(suite: Suite, metric_id: str) -> None:
    policy = parse_policy({"default": {metric_id: {"warn_max": 0.5}}}, "my_policy.yaml", suite)
    assert policy.default[metric_id].warn_max == 0.5


def test_names_are_not_checked_without_a_suite() -> None:
    policy = parse_policy({"suite": "other", "categories": {"nurse": {"anything": {"max": 1}}}})
    assert policy.rules_for("nurse")["anything"].max == 1.0


# --- schema errors: file, field path and value -------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "defaults: {composite: {max: 0.5}}\n")
    _assert_names(message, path, "defaults", "(got {'composite': {'max': 0.5}})")
    assert "Extra inputs are not permitted" in message


def test_unknown_rule_key(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "default:\n  composite: {mx: 0.55}\n")
    _assert_names(message, path, "default.composite.mx", "(got 0.55)")


def test_rule_with_nothing_to_check(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "default:\n  composite: {severity: warn}\n")
    _assert_names(message, path, "default.composite", "(got {'severity': 'warn'})")
    assert "needs at least one of min, max, warn_min, warn_max, regression" in message


def test_min_above_max(tmp_path: Path, suite: Suite) -> None:
    text = "categories:\n  doctor:\n    parity_difference: {min: 0.3, max: -0.3}\n"
    path, message = _load_error(tmp_path, suite, text)
    _assert_names(message, path, "categories.doctor.parity_difference", "min/max: 0.3 is above -0.3")


@pytest.mark.parametrize(
    ("regression", "shown"),
    [("{absolute: 0.05, relative: 0.1}", "{'absolute': 0.05, 'relative': 0.1}"), ("{}", "{}")],
    ids=["both", "neither"],
)
def test_regression_needs_exactly_one_tolerance(tmp_path: Path, suite: Suite, regression: str, shown: str) -> None:
    path, message = _load_error(tmp_path, suite, f"default:\n  composite: {{regression: {regression}}}\n")
    _assert_names(message, path, "default.composite.regression", f"(got {shown})")
    assert "exactly one of `absolute` or `relative`" in message


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_negative_tolerance(tmp_path: Path, suite: Suite, kind: str) -> None:
    path, message = _load_error(tmp_path, suite, f"default:\n  composite: {{regression: {{{kind}: -0.05}}}}\n")
    _assert_names(message, path, f"default.composite.regression.{kind}", "(got -0.05)")
    assert "greater than or equal to 0" in message


def test_severity_not_fail_or_warn(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "default:\n  composite: {max: 0.5, severity: error}\n")
    _assert_names(message, path, "default.composite.severity", "(got 'error')")
    assert "'fail' or 'warn'" in message


@pytest.mark.parametrize("alpha", ["0", "1", "-0.05", "1.5"])
def test_alpha_outside_open_unit_interval(tmp_path: Path, suite: Suite, alpha: str) -> None:
    path, message = _load_error(tmp_path, suite, f"alpha: {alpha}\n")
    _assert_names(message, path, "alpha", f"(got {alpha})")


@pytest.mark.parametrize(("alpha", "shown"), [("1.0e-300", "1e-300"), ("0.0001", "0.0001"), ("0.6", "0.6")])
def test_alpha_outside_the_range_that_can_still_fail(tmp_path: Path, suite: Suite, alpha: str, shown: str) -> None:
    # below 1e-3 the smallest Monte Carlo p-values cannot get under a family's share of alpha: nothing fails
    path, message = _load_error(tmp_path, suite, f"alpha: {alpha}\n")
    _assert_names(message, path, "alpha", f"(got {shown})")


@pytest.mark.parametrize("share", ["0", "1", "0.99", "0.01", "-0.2"])
def test_bounds_alpha_that_leaves_a_family_without_alpha(tmp_path: Path, suite: Suite, share: str) -> None:
    # 1 gives the regressions no alpha (none can fail), 0 the bounds
    path, message = _load_error(tmp_path, suite, f"bounds_alpha: {share}\n")
    _assert_names(message, path, "bounds_alpha", f"(got {share})")


@pytest.mark.parametrize("text", ["alpha: 0.001\n", "alpha: 0.5\n", "bounds_alpha: 0.05\n", "bounds_alpha: 0.95\n"])
def test_knobs_at_the_ends_of_their_ranges(tmp_path: Path, suite: Suite, text: str) -> None:
    load_policy(_write(tmp_path, "my_policy.yaml", text), suite)


def test_every_schema_error_is_reported_at_once(tmp_path: Path, suite: Suite) -> None:
    _, message = _load_error(tmp_path, suite, "alpha: 2\ndefault:\n  composite: {mx: 0.5}\n")
    assert "field `alpha`" in message and "field `default.composite.mx`" in message
    assert len(message.splitlines()) == 1  # one line: the errors joined with "; "


# --- name errors against the suite -------------------------------------------------------------------------


def test_unknown_metric_in_default_lists_valid_names(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "default:\n  compsite: {max: 0.55}\n")
    _assert_names(message, path, "default.compsite", "unknown metric 'compsite'")
    anywhere = sorted({m for metrics in RULE_METRICS.values() for m in metrics})
    assert message.endswith(f"valid: {anywhere}")


def test_unknown_category_lists_valid_categories(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "categories:\n  doctr:\n    composite: {max: 0.5}\n")
    _assert_names(message, path, "categories.doctr", "unknown category 'doctr'")
    assert message.endswith(f"valid: {CATEGORIES}")


def test_metric_the_category_does_not_report(tmp_path: Path, suite: Suite) -> None:
    text = "categories:\n  doctor:\n    kl_divergence: {max: 0.5}\n"
    path, message = _load_error(tmp_path, suite, text)
    _assert_names(message, path, "categories.doctor.kl_divergence", "no metric 'kl_divergence'")
    assert message.endswith(f"valid: {sorted(RULE_METRICS['doctor'])}")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("default:\n  representation_parity: {max: 0.5}\n", "default.representation_parity"),
        ("categories:\n  beauty:\n    representation_parity: {max: 0.5}\n", "categories.beauty.representation_parity"),
    ],
    ids=["default", "category"],
)
def test_representation_parity_is_rejected(tmp_path: Path, suite: Suite, text: str, field: str) -> None:
    path, message = _load_error(tmp_path, suite, text)
    _assert_names(message, path, field, "'representation_parity'")
    assert "'representation_parity'" not in message.partition("valid: ")[2]


def test_policy_for_another_suite(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "suite: t2i-biasbench-v2\n")
    _assert_names(message, path, "suite", "policy is for 't2i-biasbench-v2', the run uses 't2i-biasbench'")


# --- files -------------------------------------------------------------------------------------------------


def test_not_yaml(tmp_path: Path, suite: Suite) -> None:
    path = _write(tmp_path, "my_policy.yaml", "suite: t2i-biasbench\ndefault: {composite: {max: 0.5}\n")
    with pytest.raises(PolicyError, match=rf"^{re.escape(str(path))}: not valid YAML .*line 2"):
        load_policy(path, suite)


@pytest.mark.parametrize(("text", "kind"), [("- suite\n- t2i-biasbench\n", "list"), ("0.3\n", "float")])
def test_top_level_not_a_mapping(tmp_path: Path, suite: Suite, text: str, kind: str) -> None:
    path = _write(tmp_path, "my_policy.yaml", text)
    with pytest.raises(PolicyError, match=rf"^{re.escape(str(path))}: .*mapping at the top level, got {kind}$"):
        load_policy(path, suite)


def test_missing_file(tmp_path: Path, suite: Suite) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=rf"^{re.escape(str(path))}: no such policy file$"):
        load_policy(path, suite)


# --- find_policy -------------------------------------------------------------------------------------------


def test_find_policy_picks_the_file_naming_the_suite(tmp_path: Path, suite: Suite) -> None:
    _write(tmp_path, "other.yaml", "suite: another-suite\ndefault: {nonsense: {max: 1}}\n")
    _write(tmp_path, "README.md", "suite: t2i-biasbench\n")
    mine = _write(tmp_path, "gates.yml", "suite: t2i-biasbench\ndefault: {composite: {max: 0.4}}\n")
    found = find_policy(tmp_path, suite)
    assert found is not None
    policy, path = found
    assert path == mine
    assert policy.default["composite"].max == 0.4


def test_find_policy_two_files_claiming_the_suite(tmp_path: Path, suite: Suite) -> None:
    first = _write(tmp_path, "a.yaml", "suite: t2i-biasbench\n")
    second = _write(tmp_path, "b.yml", "suite: t2i-biasbench\n")
    with pytest.raises(PolicyError) as info:
        find_policy(tmp_path, suite)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: several policies for suite 't2i-biasbench'")
    assert str(first) in message and str(second) in message


def test_find_policy_invalid_match_names_file_and_field(tmp_path: Path, suite: Suite) -> None:
    path = _write(tmp_path, "gates.yaml", "suite: t2i-biasbench\ndefault:\n  composite: {mx: 0.5}\n")
    with pytest.raises(PolicyError) as info:
        find_policy(tmp_path, suite)
    _assert_names(str(info.value), path, "default.composite.mx", "(got 0.5)")


def test_find_policy_unreadable_yaml_in_folder(tmp_path: Path, suite: Suite) -> None:
    path = _write(tmp_path, "broken.yaml", "suite: [t2i-biasbench\n")
    with pytest.raises(PolicyError, match=rf"^{re.escape(str(path))}: "):
        find_policy(tmp_path, suite)


def test_find_policy_none_when_no_file_names_the_suite(tmp_path: Path, suite: Suite) -> None:
    _write(tmp_path, "other.yaml", "suite: another-suite\ndefault: {composite: {max: 0.4}}\n")
    _write(tmp_path, "no_suite_key.yaml", "default: {composite: {max: 0.4}}\n")
    _write(tmp_path, "list.yaml", "- t2i-biasbench\n")
    _write(tmp_path, "empty.yaml", "")
    (tmp_path / "nested").mkdir()
    _write(tmp_path / "nested", "t2i-biasbench.yaml", "suite: t2i-biasbench\n")
    assert find_policy(tmp_path, suite) is None


def test_find_policy_none_for_missing_folder(tmp_path: Path, suite: Suite) -> None:
    assert find_policy(tmp_path / "missing", suite) is None


# --- the docs ----------------------------------------------------------------------------------------------


def test_docs_metric_table_matches_the_suite() -> None:
    text = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in CATEGORIES and len(cells) == 4:
            rows[cells[0]] = [re.findall(r"`(\w+)`", cell) for cell in cells[1:]]
    assert list(rows) == CATEGORIES
    for category, (always, strict, scorers) in rows.items():
        assert sorted(always + strict + scorers) == sorted(RULE_METRICS[category]), category
        assert (strict, scorers) == (["unknown_rate"], ["vendi_embedding", "clip_score"])


# --- known defects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["min", "max", "warn_min", "warn_max"])
def test_nan_bound_is_rejected(tmp_path: Path, suite: Suite, key: str) -> None:
    path, message = _load_error(tmp_path, suite, f"default:\n  composite: {{{key}: .nan}}\n")
    _assert_names(message, path, f"default.composite.{key}", "nan")


def test_warn_min_above_warn_max_is_rejected(tmp_path: Path, suite: Suite) -> None:
    path, message = _load_error(tmp_path, suite, "default:\n  composite: {warn_min: 0.6, warn_max: 0.5}\n")
    _assert_names(message, path, "default.composite", "0.6")


def test_file_named_for_the_suite_needs_no_suite_key(tmp_path: Path) -> None:
    suite = load_suite("t2i-biasbench")
    (tmp_path / "t2i-biasbench.yaml").write_text("default:\n  composite: {max: 0.5}\n", encoding="utf-8")
    found = find_policy(tmp_path, suite)
    assert found is not None
    assert found[0].rules_for("doctor")["composite"].max == 0.5
