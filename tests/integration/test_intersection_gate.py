"""Issue 27 in real pytest: a regression of an intersectional share fails the bias test.

The occupations suite's `nurse`, gated on `women_of_colour_share@gender_x_ethnicity` (the share of the joint
groups female x black / asian / other, `intersect: [gender, ethnicity]`) against an approved baseline. The
approved synthetic model draws nurses at the labour shares of women and of race; the candidate draws them
92 % white: the share of women of colour falls by about 15 points and the test fails on that metric, naming
it, while the share of women (`female_share`) is unchanged and passes.
"""

from __future__ import annotations

import textwrap

import pytest

from .workflow import FAST_ARGS, check_bias_workflow

NURSE = "__baselines__/test_bias/test_nurse.json"
LABOUR_RACE = "{white: 0.736, black: 0.145, asian: 0.089, other: 0.03}"
WHITER_RACE = "{white: 0.92, black: 0.04, asian: 0.03, other: 0.01}"


def _model(race: str) -> str:
    nurse = f"    attribute: {{female: 0.879, male: 0.121}}\n    also_annotate: {{ethnicity: {race}}}\n"
    return "categories:\n  nurse:\n" + nurse


@pytest.fixture
def nurse_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(
        test_bias=textwrap.dedent(
            """
            import pytest

            from pytest_t2ibias.assertions import assert_no_regression


            @pytest.mark.t2ibias(category="nurse")
            def test_nurse(t2ibias_result):
                assert_no_regression(t2ibias_result)
            """
        )
    )
    pytester.mkdir("thresholds")
    (pytester.path / "thresholds" / "policy.yaml").write_text(
        textwrap.dedent(
            """
            suite: occupations
            categories:
              nurse:
                women_of_colour_share@gender_x_ethnicity: {regression: {absolute: 0.05}}
                female_share: {regression: {absolute: 0.05}}
            """
        )
    )
    (pytester.path / "labour.yaml").write_text(_model(LABOUR_RACE))
    (pytester.path / "whiter.yaml").write_text(_model(WHITER_RACE))
    return pytester


def test_fewer_women_of_colour_fail_the_nurse_test(nurse_project: pytest.Pytester) -> None:
    suite = ("--t2i-suite", "occupations")
    workflow = check_bias_workflow(
        nurse_project,
        [*suite, *FAST_ARGS[2:]],
        baselines=[NURSE],
        model=["--t2i-model", "synthetic:labour.yaml"],
        regressed_model=["--t2i-model", "synthetic:whiter.yaml"],
        regression_lines=[
            r".*FAIL\s+nurse\.women_of_colour_share@gender_x_ethnicity = 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]; "
            r"rule worse by <= 0\.0500; baseline 0\.\d{4}, worse by \+0\.1\d{3}: real regression.*",
            r".*driven by images of the most frequent gender_x_ethnicity group 'female_x_white'.*",
        ],
    )
    out = workflow.regressed.stdout.str()
    assert "nurse.female_share" not in " ".join(line for line in out.splitlines() if "FAIL" in line)
