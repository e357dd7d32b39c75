"""A pytest run reports its stages as they run (issue 26, item 9): CI kills a job after minutes of silence."""

from __future__ import annotations

import pytest

from pytest_t2ibias.progress import StageLines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_long_stage_writes_a_line_every_heartbeat() -> None:
    lines: list[str] = []
    clock = Clock()
    advance = StageLines(lines.append, heartbeat_s=30.0, clock=clock).stage("generate", "doctor", 100)
    assert advance is not None
    for _ in range(9):  # 10 images every 10 s
        clock.now += 10.0
        advance(10)
    assert lines == [
        "t2ibias: generate doctor: 30/100 images, 1.0 images/s, about 70 s left",
        "t2ibias: generate doctor: 60/100 images, 1.0 images/s, about 40 s left",
        "t2ibias: generate doctor: 90/100 images, 1.0 images/s, about 10 s left",
    ]
    clock.now += 10.0
    advance(10)
    assert lines[-1] == "t2ibias: generate doctor: 100 images in 100.0 s, 1.0 images/s"


def test_on_a_terminal_the_count_is_redrawn_in_place() -> None:
    lines: list[str] = []
    live: list[str] = []
    clock = Clock()
    advance = StageLines(lines.append, live=live.append, clock=clock).stage("score", "beauty", 4)
    assert advance is not None
    clock.now = 1.0
    advance(2)
    clock.now = 2.0
    advance(2)
    assert live == ["t2ibias: score beauty: 2/4 images, 2.0 images/s"]
    assert lines == ["t2ibias: score beauty: 4 images in 2.0 s, 2.0 images/s"]


def test_quiet_keeps_only_the_lines_that_keep_a_job_alive() -> None:
    lines: list[str] = []
    clock = Clock()
    advance = StageLines(lines.append, verbosity=-1, heartbeat_s=30.0, clock=clock).stage("generate", "doctor", 2)
    assert advance is not None
    clock.now = 40.0
    advance(1)
    clock.now = 41.0
    advance(1)
    assert lines == ["t2ibias: generate doctor: 1/2 images, 0.0 images/s, about 40 s left"]
    assert StageLines(lines.append, verbosity=-2).stage("generate", "doctor", 2) is None


TEST = """
import pytest

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert t2ibias_result.n == 20
"""
ARGS = ("-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-images-per-prompt", "20", "--t2i-cache", "none")


def test_a_pytest_run_prints_a_line_per_stage_and_category(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bias=TEST)
    result = pytester.runpytest(*ARGS)  # output captured as pytest captures a test's (not -s)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.re_match_lines(
        [
            r"t2ibias: generate doctor: 20 images in \d+\.\d s, [\d.]+ images/s",
            r"t2ibias: score doctor: 20 images in .*",
        ]
    )
    quiet = pytester.runpytest(*ARGS, "-q")
    assert quiet.ret == pytest.ExitCode.OK
    assert "t2ibias: generate doctor" not in quiet.stdout.str()
