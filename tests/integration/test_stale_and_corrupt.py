"""Baselines that cannot be compared: recorded with other inputs (stale), unreadable (corrupt), or unused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

BIASED = ["--t2i-model", "synthetic:biased.yaml"]
FAIR = ["--t2i-model", "synthetic:fair.yaml"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


def location(pytester: pytest.Pytester) -> str:
    return re.escape(str(pytester.path / DOCTOR_BASELINE))


@pytest.mark.parametrize(
    ("options", "changes"),
    [
        pytest.param(["--t2i-images-per-prompt", "30"], "n: 50 -> 30; images_per_prompt: 50 -> 30", id="images"),
        pytest.param(["--t2i-mode", "paper"], "mode: 'strict' -> 'paper'", id="mode"),
    ],
)
def test_baseline_of_other_inputs_is_stale_and_not_compared(
    doctor_project: pytest.Pytester, options: list[str], changes: str
) -> None:
    # the biased model would fail the comparison: a stale baseline must not get that far
    result = run(doctor_project, *BIASED, *options)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [
            rf"stale baseline {location(doctor_project)}: recorded with other inputs \({re.escape(changes)}\); "
            r"not compared",
            r"approve with `pytest --snapshot-update` .* after checking the change",
        ]
    )
    result.stdout.no_re_match_line(r".*(FAIL|WARN)\s+doctor\.male_share.*")


def test_stale_baseline_is_replaced_by_update(doctor_project: pytest.Pytester) -> None:
    updated = run(doctor_project, *FAIR, "--t2i-images-per-prompt", "30", "--snapshot-update")
    assert updated.ret == pytest.ExitCode.OK
    updated.stdout.re_match_lines([r"baselines: 1 updated$"])
    stored = json.loads((doctor_project.path / DOCTOR_BASELINE).read_text())
    assert (stored["n"], stored["images_per_prompt"]) == (30, 30)
    assert len(stored["labels"]) == 30


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(lambda good: "{not json", r"baseline is not valid JSON \(.*\)", id="garbage"),
        pytest.param(
            lambda good: json.dumps({**good, "n": "many"}),
            r"baseline field `n`: Input should be a valid integer.*",
            id="wrong-type",
        ),
        pytest.param(
            lambda good: json.dumps({**good, "colour": "blue"}),
            r"baseline field `colour`: Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            lambda good: json.dumps({k: v for k, v in good.items() if k != "suite_hash"}),
            r"baseline field `suite_hash`: Field required",
            id="missing-field",
        ),
    ],
)
def test_corrupt_baseline_fails_naming_the_file(
    doctor_project: pytest.Pytester, content: Callable[[dict[str, Any]], str], problem: str
) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    baseline.write_text(content(json.loads(baseline.read_text())))
    result = run(doctor_project, *FAIR)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [
            rf"corrupt baseline: {location(doctor_project)}: {problem}( \(got .*\))?$",
            r"approve with `pytest --snapshot-update` .* to replace it",
        ]
    )


def test_corrupt_baseline_is_replaced_by_update(doctor_project: pytest.Pytester, approved_doctor: str) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    baseline.write_text("{not json")
    result = run(doctor_project, *FAIR, "--snapshot-update")
    assert result.ret == pytest.ExitCode.OK
    assert json.loads(baseline.read_text()) == json.loads(approved_doctor)


def test_undecodable_baseline_is_reported_corrupt(doctor_project: pytest.Pytester) -> None:
    (doctor_project.path / DOCTOR_BASELINE).write_bytes(b"\xff\xfe\x00 not utf-8")
    result = run(doctor_project, *FAIR)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines([rf"corrupt baseline: {location(doctor_project)}.*"])


def test_baseline_with_labels_outside_the_suite_does_not_hide_a_regression(doctor_project: pytest.Pytester) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    stored = json.loads(baseline.read_text())
    for labels in stored["labels"].values():
        labels["gender"] = "robot"  # metrics untouched: male share 0.5 recorded, 0.9 now
    baseline.write_text(json.dumps(stored))
    result = run(doctor_project, *BIASED)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines([rf".*{location(doctor_project)}.*"])


def test_unused_baseline_is_named_kept_and_pruned_only_on_request(
    doctor_project: pytest.Pytester, approved_doctor: str
) -> None:
    # the baseline of a test that was removed after approval
    orphan = doctor_project.path / "__baselines__" / "test_bias" / "test_removed.json"
    orphan.write_text(approved_doctor)
    result = run(doctor_project, *FAIR)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.re_match_lines(
        [
            r"baselines: 1 compared$",
            r"  1 unused \(no collected test owns them; kept; .*--t2i-prune-baselines.*",
            rf"    {orphan}$",
        ]
    )
    # approving does not delete it either
    approved = run(doctor_project, *FAIR, "--snapshot-update")
    assert approved.ret == pytest.ExitCode.OK
    assert orphan.exists()
    # a run that is not a full, passing one refuses to prune
    deselected = run(doctor_project, *FAIR, "--t2i-prune-baselines", "-k", "not doctor")
    assert orphan.exists()
    failing = run(doctor_project, "--t2i-model", "synthetic:biased.yaml", "--t2i-prune-baselines")
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    failing.stdout.re_match_lines([r"  baselines not pruned: --t2i-prune-baselines needs a full, passing run.*"])
    assert orphan.exists()
    del deselected

    cleaned = run(doctor_project, *FAIR, "--t2i-prune-baselines")
    assert cleaned.ret == pytest.ExitCode.OK
    cleaned.stdout.re_match_lines([rf"  PRUNED {orphan}$"])
    assert not orphan.exists()
    assert (doctor_project.path / DOCTOR_BASELINE).is_file()
