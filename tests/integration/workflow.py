"""The baseline life cycle of a bias test, as a reusable check (after pytest-regressions' ``testing.py``).

``check_bias_workflow`` drives one pytester project through: no baseline (fails, says how to approve) ->
approve (writes the baselines, passes) -> unchanged rerun (passes) -> a more biased model (fails with the
given lines). Every step runs under ``plugin_args`` (``[]`` or ``["-n", "2"]``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Every run: the synthetic model's own scorer, 100 images per prompt, images cached in the project.
COMMON_ARGS = ("-p", "no:cacheprovider", "--t2i-images-per-prompt", "100", "--t2i-cache", "cache")
#: Quicker runs where the numbers need no precision: 50 images per prompt, no image cache.
FAST_ARGS = ("-p", "no:cacheprovider", "--t2i-images-per-prompt", "50", "--t2i-cache", "none")
#: Where the baseline of ``test_bias.py::test_doctor`` lives.
DOCTOR_BASELINE = "__baselines__/test_bias/test_doctor.json"
#: What the approving run tells the user (assertions.assert_no_regression).
APPROVE_HINT = r"approve with `pytest --snapshot-update` \(or --t2i-update-baselines; .*--t2i-force-update\).*"
#: An image path in a failure message: one line per image, inside the project's image cache.
IMAGE_LINE = r"\s+\S+/cache/\S+\.png$"


def run_bias(pytester: pytest.Pytester, *args: str, common: Sequence[str] = COMMON_ARGS) -> pytest.RunResult:
    """Run pytest in the project, in process (xdist too: its workers are subprocesses anyway)."""
    return pytester.runpytest(*common, *args)


def image_paths(result: pytest.RunResult) -> list[Path]:
    """The image paths a failure message lists."""
    return [Path(line.strip()) for line in result.outlines if re.fullmatch(IMAGE_LINE, line)]


@dataclass
class Workflow:
    """The four runs of :func:`check_bias_workflow`, for further assertions."""

    missing: pytest.RunResult
    approved: pytest.RunResult
    unchanged: pytest.RunResult
    regressed: pytest.RunResult


def check_bias_workflow(
    pytester: pytest.Pytester,
    plugin_args: Sequence[str],
    *,
    baselines: Sequence[str],
    model: Sequence[str],
    regressed_model: Sequence[str],
    regression_lines: Sequence[str],
    update_args: Sequence[str] = ("--snapshot-update",),
    outcomes_regressed: dict[str, int] | None = None,
) -> Workflow:
    """missing baseline -> update -> pass -> regress -> fail, in a project the caller has written.

    Args:
        baselines: the baseline files (relative to the project) the approving run must write.
        model: the options of the approved model (``["--t2i-model", "synthetic:fair.yaml"]``).
        regressed_model: the options of the more biased model.
        regression_lines: regexes the failing run's output must match, in order.
        update_args: the flags that approve (``--snapshot-update`` or ``--t2i-update-baselines``).
        outcomes_regressed: the outcome counts of the failing run (default: every test failed).
    """
    paths = [pytester.path / b for b in baselines]

    missing = run_bias(pytester, *plugin_args, *model)
    assert missing.ret == pytest.ExitCode.TESTS_FAILED
    for path in paths:
        missing.stdout.re_match_lines([rf".*no approved baseline at {re.escape(str(path))}$", APPROVE_HINT])
    assert not [p for p in paths if p.exists()], "a failing run must not write baselines"

    approved = run_bias(pytester, *plugin_args, *model, *update_args)
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    approved.stdout.re_match_lines([rf"baselines: {len(paths)} created$"])
    for path in paths:
        approved.stdout.re_match_lines([rf"  CREATED {re.escape(str(path))}$"])
    assert [p for p in paths if not p.is_file()] == []
    approved.assert_outcomes(passed=len(paths))

    unchanged = run_bias(pytester, *plugin_args, *model)
    assert unchanged.ret == pytest.ExitCode.OK, unchanged.stdout.str()
    unchanged.stdout.re_match_lines([rf"baselines: {len(paths)} compared$"])
    unchanged.stdout.no_re_match_line(r".*(no approved baseline|stale baseline|corrupt baseline).*")

    regressed = run_bias(pytester, *plugin_args, *regressed_model)
    assert regressed.ret == pytest.ExitCode.TESTS_FAILED, regressed.stdout.str()
    regressed.stdout.re_match_lines(list(regression_lines))
    regressed.assert_outcomes(**(outcomes_regressed or {"failed": len(paths)}))
    return Workflow(missing, approved, unchanged, regressed)
