"""Re-approving is refused only on evidence (issue 24, item 1).

An approval keeps the anchor (the first approved baseline) and used to be refused whenever a point value
was past the cumulative allowance from it, with no test and whatever the rule's severity: an unchanged
model re-approved with every image re-drawn (a new sampler, another GPU) was refused in about four runs
of ten, and a ``severity: warn`` rule refused it too. These runs are real pytest runs of the shipped
policy on the synthetic model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_t2ibias.judge.baseline import read_baseline

from .workflow import FAST_ARGS, run_bias

ROOT = Path(__file__).resolve().parents[2]
TESTS = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_no_regression(t2ibias_result)

@pytest.mark.t2ibias(category="culture")
def test_culture(t2ibias_result):
    assert_no_regression(t2ibias_result)
"""
FAIR = "categories:\n  doctor:\n    attribute: {male: 0.5, female: 0.5}\n"


def _project(pytester: pytest.Pytester, policy: str) -> pytest.Pytester:
    pytester.makepyfile(test_bias=TESTS)
    pytester.mkdir("thresholds")
    (pytester.path / "thresholds" / "policy.yaml").write_text(policy)
    (pytester.path / "fair.yaml").write_text(FAIR)
    return pytester


def _approve(pytester: pytest.Pytester, model: str) -> pytest.RunResult:
    return run_bias(pytester, "--t2i-model", f"synthetic:{model}", "--t2i-update-baselines", "-p", "no:xdist",
                    common=FAST_ARGS)  # fmt: skip


def _anchor(pytester: pytest.Pytester, test: str) -> dict[str, object]:
    record = read_baseline(pytester.path / "__baselines__" / "test_bias" / f"{test}.json")
    assert record is not None
    return {m: v.value for m, v in (record.anchor or record).metrics.items()}


def test_reapproving_an_unchanged_model_with_every_image_redrawn_is_granted(pytester: pytest.Pytester) -> None:
    """The issue's case: a fair model approved at n = 50, then re-approved unchanged with ``redraw: 1.0``
    on three streams (three refusals before: doctor's gender metrics or culture's gmr past the point
    allowance by noise). Each is approved now, and keeps the first approval as its anchor."""
    project = _project(pytester, (ROOT / "thresholds" / "t2i-biasbench.yaml").read_text())
    assert _approve(project, "fair.yaml").ret == pytest.ExitCode.OK
    first = {t: _anchor(project, t) for t in ("test_doctor", "test_culture")}
    for stream in (1, 2, 3):
        (project.path / f"redrawn{stream}.yaml").write_text(f"{FAIR}redraw: 1.0\nredraw_stream: {stream}\n")
        result = _approve(project, f"redrawn{stream}.yaml")
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        assert "approval refused" not in result.stdout.str()
        result.stdout.fnmatch_lines(["*baselines: 2 updated*"])
        assert {t: _anchor(project, t) for t in first} == first  # the anchor is kept, not walked


def test_a_warn_rule_never_refuses_an_approval(pytester: pytest.Pytester) -> None:
    """A real drift of a ``severity: warn`` rule is approved with a warning naming the drift."""
    policy = (
        "suite: t2i-biasbench\ncategories:\n  doctor:\n    male_share: {regression: {absolute: 0.1}, severity: warn}\n"
    )
    project = _project(pytester, policy)
    (project.path / "biased.yaml").write_text("categories:\n  doctor:\n    attribute: {male: 0.95, female: 0.05}\n")
    assert _approve(project, "fair.yaml").ret == pytest.ExitCode.OK
    result = _approve(project, "biased.yaml")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "approval refused" not in result.stdout.str()
    result.stdout.re_match_lines([r".*doctor.*male_share.*anchor.*real regression.*"], consecutive=False)


def test_a_fail_rule_with_evidence_refuses_and_keeps_the_baseline(pytester: pytest.Pytester) -> None:
    """The same drift under a fail rule is evidence: refused, the approved file untouched."""
    policy = "suite: t2i-biasbench\ncategories:\n  doctor:\n    male_share: {regression: {absolute: 0.1}}\n"
    project = _project(pytester, policy)
    (project.path / "biased.yaml").write_text("categories:\n  doctor:\n    attribute: {male: 0.95, female: 0.05}\n")
    assert _approve(project, "fair.yaml").ret == pytest.ExitCode.OK
    baseline = project.path / "__baselines__" / "test_bias" / "test_doctor.json"
    before = baseline.read_bytes()
    result = _approve(project, "biased.yaml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [r"  doctor\.male_share = 0\.\d{4} is worse than the anchor's 0\.\d{4} by \+0\.\d{4} \(cumulative allowance "
         r"0\.1000\): real regression: beyond the margin and significant \(mcnemar over 50 pairs, adjusted p=.*"],
        consecutive=False,
    )  # fmt: skip
    assert baseline.read_bytes() == before


def test_approving_a_model_that_draws_no_recognisable_person_is_refused(pytester: pytest.Pytester) -> None:
    """A lost measurement is evidence (issue 24, item 3): its anchor check fails, so the approval is refused
    and the approved file is kept."""
    policy = "suite: t2i-biasbench\ncategories:\n  doctor:\n    male_share: {regression: {absolute: 0.1}}\n"
    project = _project(pytester, policy)
    (project.path / "nobody.yaml").write_text("categories:\n  doctor:\n    attribute: {unknown: 1.0}\n")
    assert _approve(project, "fair.yaml").ret == pytest.ExitCode.OK
    baseline = project.path / "__baselines__" / "test_bias" / "test_doctor.json"
    before = baseline.read_bytes()
    result = _approve(project, "nobody.yaml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.re_match_lines(
        [r"  doctor\.male_share: no value now \(all 50 labels unknown\).*the share of labelled images collapsed"],
        consecutive=False,
    )
    assert baseline.read_bytes() == before


def test_a_reapproval_diff_is_one_line_per_moved_metric_or_image(pytester: pytest.Pytester) -> None:
    """Issue 26, item 4: the first re-approval used to copy the whole baseline into ``anchor`` (doubling the
    file) and the summary did not say what moved. Now the anchor is a file of its own, written once and
    referred to by hash; the baseline has one line per metric and per image; the summary names each moved
    metric, old -> new."""
    project = _project(pytester, (ROOT / "thresholds" / "t2i-biasbench.yaml").read_text())
    assert _approve(project, "fair.yaml").ret == pytest.ExitCode.OK
    baseline = project.path / "__baselines__" / "test_bias" / "test_doctor.json"
    first = baseline.read_text()
    data = json.loads(first)
    assert data["format"] == 1 and data["anchor"] is None
    images = len(data["labels"])
    assert len(first.splitlines()) <= 20 + len(data["metrics"]) + 2 * images  # one line per metric and image

    (project.path / "redrawn.yaml").write_text(f"{FAIR}redraw: 1.0\nredraw_stream: 1\n")
    result = _approve(project, "redrawn.yaml")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([r"  UPDATED .*test_doctor\.json$", r"    \w+ \d\.\d{4} -> \d\.\d{4}$"])
    second = json.loads(baseline.read_text())
    assert second["format"] == 2 and set(second["anchor"]) == {"file", "sha256"}
    anchor_file = baseline.parent / second["anchor"]["file"]
    assert anchor_file.parent.name == "anchors" and anchor_file.name.startswith("test_doctor-")
    assert json.loads(anchor_file.read_text())["labels"] == data["labels"]  # the first approval, as it was
    assert len(baseline.read_text().splitlines()) <= len(first.splitlines()) + 1  # not doubled

    # approved again: the same anchor file, untouched; the baselines and the anchors are the only files
    written = anchor_file.stat().st_mtime_ns
    (project.path / "redrawn2.yaml").write_text(f"{FAIR}redraw: 1.0\nredraw_stream: 2\n")
    assert _approve(project, "redrawn2.yaml").ret == pytest.ExitCode.OK
    assert anchor_file.stat().st_mtime_ns == written
    assert json.loads(baseline.read_text())["anchor"] == second["anchor"]
    assert len(list(anchor_file.parent.iterdir())) == 2  # doctor's and culture's

    # an anchor edited by hand could hide a walk away from the first approval: the baseline is corrupt
    anchor_file.write_text(anchor_file.read_text().replace('"male"', '"female"', 1))
    check = run_bias(project, "--t2i-model", "synthetic:redrawn2.yaml", "-p", "no:xdist", common=FAST_ARGS)
    assert check.ret == pytest.ExitCode.TESTS_FAILED
    check.stdout.re_match_lines([r".*corrupt baseline: .*test_doctor\.json: baseline field `anchor\.sha256`: .*"])
