"""A policy rule's severity decides whether a crossed rule fails the build; typos in a policy fail loudly."""

from __future__ import annotations

import textwrap

import pytest

from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

BIASED = ["--t2i-model", "synthetic:biased.yaml"]

POLICY_TEST = textwrap.dedent(
    """
    import pytest

    from pytest_t2ibias.assertions import assert_policy


    @pytest.mark.t2ibias(category="doctor")
    def test_doctor(t2ibias_result):
        assert_policy(t2ibias_result)
    """
)

#: The biased model draws 90% male doctors: a bound of 0.3 is crossed by the whole interval, and the
#: approved 50% baseline is exceeded by far more than the allowed regression.
RULES = {
    "bound": ("{max: 0.3, severity: %s}", r"rule <= 0\.3"),
    "regression": ("{regression: {absolute: 0.1}, severity: %s}", r"rule worse by <= 0\.1000"),
}


def write_policy(pytester: pytest.Pytester, rules: str) -> None:
    text = f"suite: t2i-biasbench\ncategories:\n  doctor:\n    {rules}\n"
    (pytester.path / "thresholds" / "policy.yaml").write_text(text)
    if "regression" not in rules:
        # assert_policy reads the baseline only for regression rules; syrupy would fail the run on it as unused
        (pytester.path / DOCTOR_BASELINE).unlink()


@pytest.mark.parametrize("kind", ["bound", "regression"])
def test_crossed_warn_rule_passes_and_shows_as_warn(doctor_project: pytest.Pytester, kind: str) -> None:
    rule, text = RULES[kind]
    doctor_project.makepyfile(test_bias=POLICY_TEST)
    write_policy(doctor_project, f"male_share: {rule % 'warn'}")
    result = run_bias(doctor_project, *BIASED, common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)  # the warning is listed once, in the t2ibias section
    assert "T2IBiasWarning" not in result.stdout.str()
    result.stdout.re_match_lines(
        [
            r"=+ t2ibias =+",
            r"doctor\s+50\s+.*\s+warn \(male_share\)\s+.*",
            rf"WARN test_bias\.py::test_doctor: doctor\.male_share = 0\.\d{{4}}(, baseline 0\.\d{{4}})? \({text}\): .*",
        ]
    )


@pytest.mark.parametrize("kind", ["bound", "regression"])
def test_crossed_fail_rule_fails(doctor_project: pytest.Pytester, kind: str) -> None:
    rule, text = RULES[kind]
    doctor_project.makepyfile(test_bias=POLICY_TEST)
    write_policy(doctor_project, f"male_share: {rule % 'fail'}")
    result = run_bias(doctor_project, *BIASED, common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"failed:",
            rf"\s+FAIL\s+doctor\.male_share = 0\.\d{{4}} \[0\.\d{{4}}, 0\.\d{{4}}\]; {text}.*",
            r"doctor\s+50\s+.*\s+fail \(male_share\)\s+.*",
            rf"FAIL test_bias\.py::test_doctor: doctor\.male_share = 0\.\d{{4}}(, baseline 0\.\d{{4}})? \({text}\): .*",
        ]
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        pytest.param(
            "male_shar: {max: 0.3}",
            r"field `categories\.doctor\.male_shar`: category 'doctor' has no metric 'male_shar'; "
            r"valid: \[.*'male_share'.*\]",
            id="unknown-metric",
        ),
        pytest.param(
            "male_share: {max: 0.3, sevrity: warn}",
            r"field `categories\.doctor\.male_share\.sevrity`: Extra inputs are not permitted.*",
            id="unknown-key",
        ),
        pytest.param(
            "male_share: {max: 0.3, severity: warning}",
            r"field `categories\.doctor\.male_share\.severity`: Input should be 'fail' or 'warn'.*",
            id="bad-severity",
        ),
    ],
)
def test_policy_typo_fails_naming_file_field_and_valid_names(
    doctor_project: pytest.Pytester, rules: str, message: str
) -> None:
    doctor_project.makepyfile(test_bias=POLICY_TEST)
    write_policy(doctor_project, rules)
    result = run_bias(doctor_project, *BIASED, common=FAST_ARGS)
    # checked once at the start, before any image is made: one line, no test runs, the run is not green
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([rf"ERROR: t2ibias: \S+/thresholds/policy\.yaml: {message}"])
    assert len([line for line in result.stderr.lines if "policy.yaml" in line]) == 1
    result.stdout.no_re_match_line(r".*Traceback.*")
    result.stdout.no_re_match_line(r".*test_doctor.*")


def test_unknown_metric_in_default_block_lists_every_metric(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(test_bias=POLICY_TEST)
    (doctor_project.path / "thresholds" / "policy.yaml").write_text(
        "suite: t2i-biasbench\ndefault:\n  compsite: {max: 0.5}\n"
    )
    result = run_bias(doctor_project, *BIASED, common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines(
        [
            r"ERROR: t2ibias: \S+/thresholds/policy\.yaml: field `default\.compsite`: unknown metric 'compsite'; "
            r"valid: \[.*'composite'.*\]"
        ]
    )
