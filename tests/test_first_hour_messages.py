"""Error messages that used to point the wrong way (issue 26, item 5), each from a real pytest run."""

from __future__ import annotations

import pytest

TEST = """
import pytest
from pytest_t2ibias.assertions import assert_policy

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_policy(t2ibias_result)
"""
POLICY = "suite: {suite}\ncategories:\n  doctor:\n    male_share: {{max: 0.01}}\n"
ARGS = ("-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-images-per-prompt", "20", "--t2i-cache", "none")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_bias=TEST)
    pytester.mkdir("thresholds")
    return pytester


def test_a_policy_file_given_as_the_thresholds_setting_is_used(project: pytest.Pytester) -> None:
    """``--t2i-thresholds=thresholds/policy.yaml`` said "folder ... does not exist"; the file is the policy."""
    (project.path / "thresholds" / "policy.yaml").write_text(POLICY.format(suite="t2i-biasbench"))
    result = project.runpytest(*ARGS, "--t2i-thresholds", "thresholds/policy.yaml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the file's impossible bound applied
    result.stdout.fnmatch_lines(["*doctor*male_share*"])
    assert "does not exist" not in result.stdout.str() + result.stderr.str()


def test_a_missing_thresholds_path_says_file_or_folder(project: pytest.Pytester) -> None:
    result = project.runpytest(*ARGS, "--t2i-thresholds", "policies/nope.yaml")
    assert result.ret != pytest.ExitCode.OK
    text = result.stdout.str() + result.stderr.str()
    assert "nope.yaml does not exist (give the folder of policy files, or one policy file)" in text


def test_a_misspelt_suite_in_a_policy_is_named_at_start_up(project: pytest.Pytester) -> None:
    """A misspelt ``suite:`` said "set --t2i-thresholds", although it was set."""
    (project.path / "thresholds" / "policy.yaml").write_text(POLICY.format(suite="t2i-biasbnech"))
    result = project.runpytest(*ARGS)
    assert result.ret != pytest.ExitCode.OK
    text = result.stdout.str() + result.stderr.str()
    assert "policy.yaml: field suite: 't2i-biasbnech' names no suite of this run; did you mean 't2i-biasbench'?" in text
    assert "set --t2i-thresholds" not in text


def test_another_suites_policy_in_the_folder_is_not_an_error(project: pytest.Pytester) -> None:
    (project.path / "thresholds" / "occupations.yaml").write_text("suite: occupations\ncategories: {}\n")
    (project.path / "thresholds" / "policy.yaml").write_text(POLICY.format(suite="t2i-biasbench"))
    result = project.runpytest(*ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*doctor*male_share*"])


def test_the_tiny_model_pairs_with_the_tiny_scorer(pytester: pytest.Pytester) -> None:
    """``--t2i-model tiny`` without a scorer fell back to CLIP ViT-L-14 and failed offline after retries."""
    pytester.makepyfile(
        test_bias="""
        import pytest

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result, t2ibias_scorer):
            assert t2ibias_result.n == 2
            assert "tiny" in t2ibias_result.scorer  # the tiny CLIP, built in memory
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--t2i-model", "tiny", "--t2i-images-per-prompt", "2",
                                "--t2i-cache", "none")  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
