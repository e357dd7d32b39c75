"""Issue 24, item 3, in real pytest: a model that draws no recognisable person fails.

The fair synthetic model is approved (``approved_doctor``); the candidate draws every doctor as ``unknown``
gender. Before, its test passed with "no value" warnings and the summary said "no worse than baseline".
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .workflow import FAST_ARGS, run_bias

NOBODY = ["--t2i-model", "synthetic:nobody.yaml"]
SHIPPED_POLICY = (Path(__file__).resolve().parents[2] / "thresholds" / "t2i-biasbench.yaml").read_text()


@pytest.fixture
def nobody_project(doctor_project: pytest.Pytester) -> pytest.Pytester:
    (doctor_project.path / "nobody.yaml").write_text("categories:\n  doctor:\n    attribute: {unknown: 1.0}\n")
    return doctor_project


def test_a_baseline_metric_without_a_value_now_fails_the_regression_test(nobody_project: pytest.Pytester) -> None:
    result = run_bias(nobody_project, *NOBODY, common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r".*t2ibias: doctor FAILED: male_share: no value now \(all 50 labels unknown\).*",
            r"\s+FAIL\s+doctor\.male_share = null; rule worse by <= 0\.1000; baseline 0\.\d{4}: no value now "
            r"\(all 50 labels unknown\), the baseline had 0\.\d{4} over 50 labelled images: the share of labelled "
            r"images collapsed",
            r"doctor\s+50\s+.*\s+fail \(male_share\)\s+male_share no value vs 0\.\d{3}",
        ]
    )
    result.stdout.no_re_match_line(r".*no worse than baseline.*")


def test_the_shipped_policy_fails_it_on_unknown_rate(nobody_project: pytest.Pytester) -> None:
    nobody_project.makepyfile(
        test_bias=textwrap.dedent(
            """
            import pytest

            from pytest_t2ibias.assertions import assert_policy


            @pytest.mark.t2ibias(category="doctor")
            def test_doctor(t2ibias_result):
                assert_policy(t2ibias_result)
            """
        )
    )
    (nobody_project.path / "thresholds" / "policy.yaml").write_text(SHIPPED_POLICY)
    result = run_bias(nobody_project, *NOBODY, common=FAST_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FAIL test_bias.py::test_doctor: " in out and "doctor.unknown_rate = 1.0000" in out
    assert "the share of labelled images collapsed" in out
    assert "parity_difference (no value)" in out
    assert "no worse than baseline" not in out
