"""What a reviewer sees of a run: the terminal summary, the failure's first line, the CI job summary, the
JSON report's baseline images (the flips), JUnit properties, and skip locations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .workflow import COMMON_ARGS, DOCTOR_BASELINE, run_bias

FAIR = ("--t2i-model", "synthetic:fair.yaml")
BIASED = ("--t2i-model", "synthetic:biased.yaml")


@pytest.fixture
def regressed(regression_project: pytest.Pytester, plugin_args: list[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fair model approved, then the biased one run with every report on."""
    project = regression_project
    approved = run_bias(project, *FAIR, "--snapshot-update", *plugin_args)
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    assert (project.path / DOCTOR_BASELINE).is_file()
    summary = project.path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_bias(project, *BIASED, "--t2i-report", "report.json", "--junitxml", "junit.xml", "-rA", *plugin_args)
    return project, result


def test_the_failure_says_what_failed_first(regressed) -> None:  # type: ignore[no-untyped-def]
    _, result = regressed
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # pytest's one-line short summary (cut to the terminal's width) starts with the verdict and the metric,
    # not with the run's header; the full message's first line says by how much
    result.stdout.re_match_lines([r"FAILED test_bias\.py::test_doctor - Failed: t2ibias: doctor FAILED: male_share.*"])
    result.stdout.re_match_lines([r".*t2ibias: doctor FAILED: male_share worse by \+0\.\d{4} \(allowed 0\.1000\);.*"])


def test_the_terminal_table_says_what_warned_and_by_how_much(regressed) -> None:  # type: ignore[no-untyped-def]
    _, result = regressed
    # the verdict names the metrics behind it; the last column the worst change with both values
    result.stdout.re_match_lines(
        [r"doctor\s+100\s+.*fail \([a-z_, ]+\)\s+\w+ 0\.\d{3} vs [-0-9.]+ \(worse by 0\.\d{3}\)"]
    )
    assert "worst delta" not in result.stdout.str()
    # warnings appear once, in the t2ibias section, not also as Python warnings
    assert "T2IBiasWarning" not in result.stdout.str()


def test_the_step_summary_is_appended(regressed) -> None:  # type: ignore[no-untyped-def]
    project, _ = regressed
    text = (project.path / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## t2ibias: FAILED")
    assert "| doctor | 100 | FAIL |" in text
    assert "### Failed checks" in text


def test_the_report_carries_the_baseline_images_and_their_flips(regressed) -> None:  # type: ignore[no-untyped-def]
    project, _ = regressed
    run = json.loads((project.path / "report.json").read_text(encoding="utf-8"))
    doctor = run["categories"]["doctor"]
    baseline = doctor["baseline"]
    assert baseline is not None and len(baseline["images"]) == doctor["n"] == 100
    old = {i["seed"]: i["labels"]["gender"] for i in baseline["images"]}
    new = {i["seed"]: i["labels"]["gender"] for i in doctor["images"]}
    assert old.keys() == new.keys()
    flips = [s for s in new if new[s] != old[s]]
    # 50% -> 90% male on coupled seeds: about 40 doctors flip, every one of them female -> male
    assert 25 <= len(flips) <= 55 and all(old[s] == "female" and new[s] == "male" for s in flips)
    # the fair model's images are still in the cache: the report can show both sides of each flip
    paths = [i["path"] for i in baseline["images"]]
    assert all(p is not None and Path(p).is_file() for p in paths)
    assert set(paths).isdisjoint(i["path"] for i in doctor["images"])


def test_junit_properties_carry_verdicts_and_baselines(regressed) -> None:  # type: ignore[no-untyped-def]
    project, _ = regressed
    tree = ET.parse(project.path / "junit.xml")
    doctor = next(t for t in tree.iter("testcase") if t.get("name") == "test_doctor")
    props = {p.get("name"): p.get("value") for p in doctor.iter("property")}
    assert props["t2ibias.doctor.male_share.regression"] == "fail"
    assert float(props["t2ibias.doctor.male_share.baseline"]) == pytest.approx(0.5, abs=0.15)
    assert float(props["t2ibias.doctor.male_share"]) > 0.8


def test_a_skipped_bias_test_is_reported_at_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nt2ibias_unconfigured = skip\n")
    pytester.makepyfile(
        test_bias="""
        import pytest

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            pass
        """
    )
    result = run_bias(pytester, "-rs", common=COMMON_ARGS)
    result.assert_outcomes(skipped=1)
    result.stdout.re_match_lines([r"SKIPPED \[1\] test_bias\.py:\d+: t2ibias: no model.*"])
    assert "pytest_t2ibias" not in "\n".join(line for line in result.outlines if line.startswith("SKIPPED"))
