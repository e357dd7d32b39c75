"""The run's outputs (results JSON, HTML, step summary) are never silently lost or written over a baseline.

Issue 21, item 3: a suite file whose ``name:`` differs from its path crashed every comparing run at the
session end (and under xdist lost every report with exit 0); an output that cannot be written took the
others with it in a traceback; a report path inside ``__baselines__`` overwrote a baseline.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import OUTER_RUN_ENVIRONMENT
from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

FAIR = ("--t2i-model", "synthetic:fair.yaml")

#: The documented custom suite (docs/suites.md), kept at a path that is not its name.
CUSTOM_SUITE = """
name: my-suite
attributes:
  gender:
    rule: most_hits
    groups:
      female: {terms: [woman, female], phrases: [a photo of a woman]}
      male: {terms: [man, male], phrases: [a photo of a man]}
categories:
  nurse:
    prompts: [A nurse at work.]
    people: true
    attribute: gender
    parity: {a: [male], b: [female]}
    terms:
      keywords: [nurse, work]
    metrics: [representation_parity, parity_difference, entropy, entropy_normalized, composite]
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


@pytest.fixture
def custom_suite_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project on ``suites/custom.yaml`` (``name: my-suite``), its policy, and its baseline approved."""
    pytester.makepyfile(
        test_bias="""
        import pytest
        from pytest_t2ibias.assertions import assert_no_regression

        @pytest.mark.t2ibias(category="nurse")
        def test_nurse(t2ibias_result):
            assert_no_regression(t2ibias_result)
        """
    )
    pytester.mkdir("suites")
    (pytester.path / "suites" / "custom.yaml").write_text(textwrap.dedent(CUSTOM_SUITE).lstrip())
    pytester.mkdir("thresholds")
    (pytester.path / "thresholds" / "policy.yaml").write_text(
        "suite: my-suite\ncategories:\n  nurse:\n    parity_difference: {regression: {absolute: 0.2}}\n"
    )
    pytester.makeini("[pytest]\nt2ibias_model = synthetic\nt2ibias_suite = suites/custom.yaml\n")
    approved = run(pytester, "--snapshot-update", "-p", "no:xdist", "--t2i-cache", "cache")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    return pytester


def test_a_suite_named_otherwise_than_its_path_writes_every_report(
    custom_suite_project: pytest.Pytester, plugin_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = custom_suite_project
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    # with the image cache on: the report then shows the baseline's cached images, which needs the suite
    cached = ("--t2i-cache", "cache")
    result = run(project, *cached, "--t2i-report", "report.json", "--t2i-html", "report.html", *plugin_args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.re_match_lines([r"nurse\s+50\s+.*", r"baselines: 1 compared"])
    assert (project.path / "report.json").is_file() and (project.path / "report.html").is_file()
    assert "## t2ibias: " in (project.path / "summary.md").read_text(encoding="utf-8")


def test_a_worker_that_loses_its_results_fails_the_run(doctor_project: pytest.Pytester) -> None:
    # the results a worker cannot build are named at the controller, not dropped with exit 0
    doctor_project.makeconftest(
        """
        import os
        from pytest_t2ibias.session import T2IBiasSession

        def broken(self):
            raise RuntimeError("results cannot be built")

        if os.environ.get("PYTEST_XDIST_WORKER"):
            T2IBiasSession.run_result = broken
        """
    )
    result = run(doctor_project, *FAIR, "--t2i-report", "report.json", "-n", "2")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.re_match_lines(
        [r"ERROR t2ibias: the bias results of xdist worker gw\d are lost: RuntimeError: results cannot be built"]
    )


def test_a_step_summary_that_is_a_folder_is_one_error_and_the_reports_are_written(
    doctor_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (doctor_project.path / "summary").mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(doctor_project.path / "summary"))
    result = run(doctor_project, *FAIR, "--t2i-report", "report.json", "--t2i-html", "report.html")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    errors = [line for line in result.outlines if line.startswith("ERROR t2ibias")]
    assert len(errors) == 1 and "GITHUB_STEP_SUMMARY" in errors[0] and "Is a directory" in errors[0], errors
    assert (doctor_project.path / "report.json").is_file() and (doctor_project.path / "report.html").is_file()


def test_a_report_under_a_file_is_refused_at_start(doctor_project: pytest.Pytester) -> None:
    (doctor_project.path / "pytest.ini").write_text("[pytest]\n")
    result = run(doctor_project, *FAIR, "--t2i-html", "pytest.ini/r.html", "--t2i-report", "report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines(
        [r"ERROR: t2ibias: --t2i-html / t2ibias_html: .*pytest\.ini/r\.html cannot be written, .*pytest\.ini is a file"]
    )
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("option", ["--t2i-report", "--t2i-html"])
@pytest.mark.parametrize("through_link", [False, True], ids=["direct", "symlink"])
def test_a_report_into_the_baselines_folder_is_refused(
    doctor_project: pytest.Pytester, option: str, through_link: bool
) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    target = DOCTOR_BASELINE
    if through_link:  # a link outside the folder that resolves into it
        (doctor_project.path / "out").symlink_to(baseline.parent, target_is_directory=True)
        target = "out/test_doctor.json"
    result = run(doctor_project, *FAIR, option, target)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    name = option.removeprefix("--t2i-")
    result.stderr.re_match_lines([rf"ERROR: t2ibias: {option} / t2ibias_{name}: .* is inside a baselines folder.*"])
    assert baseline.read_bytes() == before


def test_a_step_summary_into_the_baselines_folder_is_refused(
    doctor_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(baseline))
    result = run(doctor_project, *FAIR)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.re_match_lines([r"ERROR: t2ibias: GITHUB_STEP_SUMMARY: .* is inside a baselines folder.*"])
    assert baseline.read_bytes() == before


def test_a_file_size_limit_is_one_error_per_report(doctor_project: pytest.Pytester) -> None:
    """``ulimit -f``: each report fails on its own with one line, the run fails, no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in (*OUTER_RUN_ENVIRONMENT, "PYTEST_ADDOPTS")}

    def limit() -> None:  # 8 KiB: the baseline fits (it is only read), the reports do not
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    args = [*FAST_ARGS, *FAIR, "-p", "no:xdist", "--t2i-report", "report.json", "--t2i-html", "report.html"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=doctor_project.path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=limit,  # the child alone, before it starts
    )
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.INTERNAL_ERROR, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR t2ibias")]
    assert len(errors) == 2 and all("File too large" in line for line in errors), errors
    assert not Path(doctor_project.path / "report.json").exists()
