"""``--t2i-update-baselines`` (and ``--snapshot-update``), and the refusal to update in CI."""

from __future__ import annotations

import json

import pytest

from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

FAIR = ["--t2i-model", "synthetic:fair.yaml"]
BIASED = ["--t2i-model", "synthetic:biased.yaml"]
CI_REFUSAL = (
    r"ERROR: t2ibias: refusing to update baselines in a CI job \({variable} is set\); approve baselines locally, "
    r"or pass --t2i-force-update"
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


@pytest.fixture
def unapproved(doctor_project: pytest.Pytester) -> pytest.Pytester:
    """The doctor project before its baseline was approved."""
    (doctor_project.path / DOCTOR_BASELINE).unlink()
    return doctor_project


def test_update_baselines_writes_baselines_like_snapshot_update(
    unapproved: pytest.Pytester, plugin_args: list[str], approved_doctor: str
) -> None:
    baseline = unapproved.path / DOCTOR_BASELINE
    result = run(unapproved, *plugin_args, *FAIR, "--t2i-update-baselines")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.re_match_lines([r"baselines: 1 created$", rf"  CREATED {baseline}$"])
    # the same baseline as --snapshot-update wrote for the session's approved one
    assert json.loads(baseline.read_text()) == json.loads(approved_doctor)


def test_approving_past_the_cumulative_allowance_is_refused(doctor_project: pytest.Pytester) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    result = run(doctor_project, *BIASED, "--t2i-update-baselines")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [
            r"approval refused: this run is significantly beyond the cumulative allowance from the anchor kept in \S+:",
            r"  doctor\.male_share = 0\.\d{4} is worse than the anchor's 0\.\d{4} by \+0\.\d{4} \(cumulative allowance "
            r"0\.1000\)",
            r"  small approved steps may not walk the model that far; approve it on purpose with --t2i-reset-anchor.*",
        ]
    )
    assert baseline.read_bytes() == before


def test_update_baselines_approves_a_regression_with_a_new_anchor(doctor_project: pytest.Pytester) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = json.loads(baseline.read_text())["metrics"]["male_share"]["value"]

    result = run(doctor_project, *BIASED, "--t2i-update-baselines", "--t2i-reset-anchor")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.re_match_lines([r"baselines: 1 updated$", rf"  UPDATED {baseline}$"])
    after = json.loads(baseline.read_text())["metrics"]["male_share"]["value"]
    assert after > before + 0.2

    rerun = run(doctor_project, *BIASED)
    assert rerun.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("update_flag", ["--snapshot-update", "--t2i-update-baselines"])
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
        ("GITLAB_CI", "true"),
        ("BUILDKITE", "true"),
        ("JENKINS_URL", "https://ci.example/"),
        ("TF_BUILD", "True"),
        ("TEAMCITY_VERSION", "2024.1"),
        ("CIRCLECI", "true"),
    ],
)
def test_update_is_refused_in_ci(
    unapproved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, update_flag: str, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = run(unapproved, *FAIR, update_flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([CI_REFUSAL.format(variable=variable)])
    assert not (unapproved.path / DOCTOR_BASELINE).exists()


def test_force_update_allows_updating_in_ci(unapproved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = run(unapproved, *FAIR, "--t2i-update-baselines", "--t2i-force-update")
    assert result.ret == pytest.ExitCode.OK
    assert (unapproved.path / DOCTOR_BASELINE).is_file()

    # CI only stops updating: comparing against the baselines runs as usual
    rerun = run(unapproved, *FAIR)
    assert rerun.ret == pytest.ExitCode.OK
    rerun.stdout.re_match_lines([r"baselines: 1 compared$"])


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_a_false_ci_variable_is_not_ci(
    unapproved: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    result = run(unapproved, *FAIR, "--t2i-update-baselines")
    assert result.ret == pytest.ExitCode.OK
