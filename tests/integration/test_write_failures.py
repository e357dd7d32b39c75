"""A baseline approval cannot write: one line naming the file and the reason (issue 21 item 10).

Each case was a raw traceback before; the old baseline survived, and still does.
"""

from __future__ import annotations

import os
import re
import stat
import textwrap
from pathlib import Path

import pytest

from pytest_t2ibias import snapshot
from pytest_t2ibias.judge.baseline import parse_baseline

from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

BIASED = ["--t2i-model", "synthetic:biased.yaml"]
#: approve the more biased model on purpose (a new anchor), so the baseline must be rewritten
UPDATE = ("--t2i-update-baselines", "--t2i-reset-anchor")
NO_TRACEBACK = r".*(Traceback|OSError|PermissionError|IsADirectoryError|NotADirectoryError|FileExistsError).*"


def _fails_with_one_line(result: pytest.RunResult, path: Path, reason: str) -> None:
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([rf".*t2ibias: doctor: cannot write baseline {re.escape(str(path))}: {reason}$"])
    result.stdout.no_re_match_line(NO_TRACEBACK)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_folder(doctor_project: pytest.Pytester) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    baseline.parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = run_bias(doctor_project, *BIASED, *UPDATE, common=FAST_ARGS)
    finally:
        baseline.parent.chmod(stat.S_IRWXU)
    _fails_with_one_line(result, baseline, "Permission denied")
    assert baseline.read_bytes() == before


def test_a_read_only_file_system_names_the_file_and_keeps_the_old_one(
    doctor_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a read-only folder does where the tests run as root (which writes into one anyway)
    def refuse(path: Path, text: str, durable: bool = True) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(snapshot, "write_text_atomic", refuse)
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    result = run_bias(doctor_project, *BIASED, *UPDATE, common=FAST_ARGS)
    _fails_with_one_line(result, baseline, "Permission denied")
    assert baseline.read_bytes() == before


def test_a_folder_where_the_baseline_goes(doctor_project: pytest.Pytester) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    baseline.unlink()
    baseline.mkdir()
    (baseline / "keep.txt").write_text("mine")
    result = run_bias(doctor_project, *BIASED, *UPDATE, common=FAST_ARGS)
    _fails_with_one_line(result, baseline, "Is a directory")
    assert (baseline / "keep.txt").read_text() == "mine"


def test_a_file_where_the_baselines_folder_goes(doctor_project: pytest.Pytester) -> None:
    store = doctor_project.path / "__baselines__"
    for path in sorted(store.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    store.rmdir()
    store.write_text("not a folder")
    result = run_bias(doctor_project, *BIASED, *UPDATE, common=FAST_ARGS)
    _fails_with_one_line(result, doctor_project.path / DOCTOR_BASELINE, "(Not a directory|File exists)")
    assert store.read_text() == "not a folder"


@pytest.mark.skipif(not hasattr(os, "setrlimit") and os.name != "posix", reason="needs RLIMIT_FSIZE")
def test_a_file_size_limit(doctor_project: pytest.Pytester) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    doctor_project.makeconftest(
        textwrap.dedent(
            f"""
            import resource
            # as `ulimit -f`: no file may grow past a fraction of a baseline
            resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) // 4}, resource.RLIM_INFINITY))
            """
        )
    )
    # in a process of its own: the limit would hold for this one too
    result = doctor_project.runpytest_subprocess(*FAST_ARGS, *BIASED, *UPDATE, "-p", "no:xdist")
    _fails_with_one_line(result, baseline, r"file too large \(a file-size limit, ulimit -f\?\)")
    assert baseline.read_bytes() == before
    parse_baseline(baseline.read_text(), str(baseline))
    assert [p.name for p in baseline.parent.iterdir()] == [baseline.name]  # no temp file left behind
