"""A run that tested nothing is red, a test nothing gated says so, and a policy cannot switch its gate off.

Issue 21, item 4: every bias test skipped (a GPU runner that lost CUDA) exited 0 with a "passed" step
summary; a marked test that called no assertion helper passed without a word; ``alpha: 1e-300`` and
``bounds_alpha: 1`` made checks unable to fail.
"""

from __future__ import annotations

import pytest

from .workflow import FAST_ARGS, run_bias

FAIR = ("--t2i-model", "synthetic:fair.yaml")

SKIPPED_TESTS = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

no_cuda = pytest.mark.skipif(True, reason="CUDA lost")

@no_cuda
@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_no_regression(t2ibias_result)

@no_cuda
def test_culture(t2ibias_evaluate):
    assert_no_regression(t2ibias_evaluate("culture"))

def test_not_bias():
    pass
"""

UNGATED_TEST = """
import pytest

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert t2ibias_result.n == 50  # plain asserts are documented usage; no policy or baseline judged it
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


def test_a_run_whose_bias_tests_were_all_skipped_fails(
    doctor_project: pytest.Pytester, plugin_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor_project.makepyfile(test_bias=SKIPPED_TESTS)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(doctor_project.path / "summary.md"))
    result = run(doctor_project, *FAIR, *plugin_args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [r"FAILED no bias test ran: all 2 selected bias tests were skipped.*t2ibias_allow_all_skipped = true.*"]
    )
    summary = (doctor_project.path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## t2ibias: FAILED: no bias test ran") and "passed" not in summary


def test_allow_all_skipped_lets_it_pass_saying_no_bias_test_ran(
    doctor_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor_project.makepyfile(test_bias=SKIPPED_TESTS)
    (doctor_project.path / "pytest.ini").write_text("[pytest]\nt2ibias_allow_all_skipped = true\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(doctor_project.path / "summary.md"))
    result = run(doctor_project, *FAIR)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    summary = (doctor_project.path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## t2ibias: no bias test ran") and "passed" not in summary


def test_skipping_unconfigured_bias_tests_on_purpose_still_passes(doctor_project: pytest.Pytester) -> None:
    # t2ibias_unconfigured = skip asks for exactly this where no model is configured
    (doctor_project.path / "pytest.ini").write_text("[pytest]\nt2ibias_unconfigured = skip\n")
    result = run(doctor_project)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(skipped=1)


def test_a_test_nothing_gated_passes_and_every_summary_says_so(
    doctor_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor_project.makepyfile(test_bias=UNGATED_TEST)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(doctor_project.path / "summary.md"))
    result = run(doctor_project, *FAIR, "--t2i-html", "report.html")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines(
        [r"doctor\s+50\s+.*not gated.*", r"NOT GATED doctor: not gated by a policy or baseline.*"]
    )
    summary = (doctor_project.path / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## t2ibias: not gated by a policy or baseline"), summary
    assert "doctor: not gated by a policy or baseline" in summary
    html = (doctor_project.path / "report.html").read_text(encoding="utf-8")
    assert "Not gated by a policy or baseline" in html


def test_require_gate_fails_a_test_nothing_gated(doctor_project: pytest.Pytester, plugin_args: list[str]) -> None:
    doctor_project.makepyfile(test_bias=UNGATED_TEST)
    (doctor_project.path / "pytest.ini").write_text("[pytest]\nt2ibias_require_gate = true\n")
    result = run(doctor_project, *FAIR, *plugin_args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [r"t2ibias: doctor: not gated by a policy or baseline: the test called no assertion helper .*"]
    )


def test_require_gate_passes_a_test_a_helper_judged(doctor_project: pytest.Pytester) -> None:
    (doctor_project.path / "pytest.ini").write_text("[pytest]\nt2ibias_require_gate = true\n")
    result = run(doctor_project, *FAIR)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


@pytest.mark.parametrize(
    ("knob", "shown"), [("alpha: 1.0e-300", "1e-300"), ("bounds_alpha: 1", "1"), ("bounds_alpha: 0", "0")]
)
def test_a_knob_that_switches_a_gate_off_is_one_error(doctor_project: pytest.Pytester, knob: str, shown: str) -> None:
    policy = doctor_project.path / "thresholds" / "policy.yaml"
    rules = "categories:\n  doctor:\n    male_share: {max: 0.2, regression: {absolute: 0.1}}\n"
    policy.write_text(f"suite: t2i-biasbench\n{knob}\n{rules}")
    result = run(doctor_project, "--t2i-model", "synthetic:biased.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    field = knob.split(":")[0]
    result.stderr.re_match_lines([rf"ERROR: t2ibias: .*policy\.yaml: field `{field}`: .*\(got {shown}\)"])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1
