"""syrupy is the snapshot layer (issue 25): the bias baselines are syrupy snapshots of an extension whose
comparator is the gate. syrupy's report counts them, ``assert t2ibias_result == snapshot`` works, and what
syrupy would do alone (compare bytes, write, delete unused files) never reaches a baseline."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

FAIR = ["--t2i-model", "synthetic:fair.yaml"]
BIASED = ["--t2i-model", "synthetic:biased.yaml"]

EQUALS_SNAPSHOT = textwrap.dedent(
    """
    import pytest


    @pytest.mark.t2ibias(category="doctor")
    def test_doctor(t2ibias_result, snapshot):
        assert t2ibias_result == snapshot
    """
)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


def test_a_compared_baseline_is_counted_in_syrupys_report(doctor_project: pytest.Pytester) -> None:
    passed = run(doctor_project, *FAIR)
    assert passed.ret == pytest.ExitCode.OK, passed.stdout.str()
    passed.stdout.re_match_lines([r".*1 snapshot passed\.$"])

    failed = run(doctor_project, *BIASED)
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.re_match_lines([r".*1 snapshot failed\.$"])


def test_result_equals_snapshot_is_judged_by_the_gate_not_by_bytes(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(test_bias=EQUALS_SNAPSHOT)
    baseline = doctor_project.path / DOCTOR_BASELINE
    # the same record written differently: syrupy's byte comparison would fail it, the gate compares values
    baseline.write_text(json.dumps(json.loads(baseline.read_text()), indent=1, sort_keys=False) + "\n\n")
    before = baseline.read_bytes()

    passed = run(doctor_project, *FAIR)
    assert passed.ret == pytest.ExitCode.OK, passed.stdout.str()
    passed.stdout.re_match_lines([r".*1 snapshot passed\.$"])

    failed = run(doctor_project, *BIASED)
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    # the message assert_no_regression gives, not a diff of two JSON files
    failed.stdout.re_match_lines([r".*t2ibias: doctor FAILED: male_share worse by .*", r".*1 snapshot failed\.$"])
    assert baseline.read_bytes() == before
    assert not (doctor_project.path / "__snapshots__").exists()


def test_snapshot_update_approves_through_the_gate(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(test_bias=EQUALS_SNAPSHOT)
    baseline = doctor_project.path / DOCTOR_BASELINE
    baseline.unlink()

    missing = run(doctor_project, *FAIR)
    assert missing.ret == pytest.ExitCode.TESTS_FAILED
    missing.stdout.re_match_lines([r".*no approved baseline at .*test_doctor\.json$"])
    assert not baseline.exists()

    approved = run(doctor_project, *FAIR, "--snapshot-update")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    approved.stdout.re_match_lines([r".*1 snapshot generated\.$"])
    record = json.loads(baseline.read_text())
    assert record["category"] == "doctor" and "male_share" in record["metrics"]

    again = run(doctor_project, *FAIR)
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()


def test_a_conftest_snapshot_override_does_not_move_the_baselines(doctor_project: pytest.Pytester) -> None:
    doctor_project.makeconftest(
        """
        import pytest
        from syrupy.extensions.json import JSONSnapshotExtension


        @pytest.fixture
        def snapshot(snapshot):
            return snapshot.use_extension(JSONSnapshotExtension)
        """
    )
    doctor_project.makepyfile(test_bias=EQUALS_SNAPSHOT)
    result = run(doctor_project, *FAIR)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert not (doctor_project.path / "__snapshots__").exists()


def test_without_syrupy_the_gate_still_compares(doctor_project: pytest.Pytester) -> None:
    passed = run(doctor_project, *FAIR, "-p", "no:syrupy")
    assert passed.ret == pytest.ExitCode.OK, passed.stdout.str()
    assert "snapshot passed" not in passed.stdout.str()
    failed = run(doctor_project, *BIASED, "-p", "no:syrupy")
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.re_match_lines([r".*t2ibias: doctor FAILED: male_share worse by .*"])


def test_the_extension_named_by_hand_is_a_clear_error(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(
        test_by_hand="""
        from pytest_t2ibias.syrupy_extension import BaselineExtension


        def test_by_hand(snapshot):
            assert {"male_share": 0.5} == snapshot(extension_class=BaselineExtension)
        """
    )
    result = run(doctor_project, *FAIR, "test_by_hand.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines([r".*bias baselines are compared by their test's gate.*"])
    assert not (doctor_project.path / "__baselines__" / "test_by_hand").exists()


# -- why syrupy's discovery is switched off for the baselines ------------------------------------------------


NAIVE_CONFTEST = """
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode


class Naive(SingleFileSnapshotExtension):
    # syrupy's single-file layout, with syrupy's own discovery and deletion
    file_extension = "json"
    _write_mode = WriteMode.TEXT
"""

NAIVE_TESTS = """
from conftest import Naive


def test_doctor(snapshot):
    {doctor}
    assert "{{}}" == snapshot(extension_class=Naive)


def test_culture(snapshot):
    assert "{{}}" == snapshot(extension_class=Naive)
"""


def test_syrupy_alone_deletes_the_snapshot_of_a_test_that_failed_before_comparing(pytester: pytest.Pytester) -> None:
    """The guarantee syrupy's defaults do not keep: under ``--snapshot-update``, the file of a test that
    raised before its assertion is "unused" and deleted. Hence the extension discovers nothing, and
    deleting is ``--t2i-prune-baselines``'s alone (after a full, passing run)."""
    pytester.makeconftest(NAIVE_CONFTEST)
    pytester.makepyfile(test_naive=NAIVE_TESTS.format(doctor="pass"))
    assert pytester.runpytest("-p", "no:cacheprovider", "--snapshot-update").ret == pytest.ExitCode.OK
    naive = pytester.path / "__snapshots__" / "test_naive" / "test_doctor.json"
    assert naive.is_file()

    pytester.makepyfile(test_naive=NAIVE_TESTS.format(doctor='raise RuntimeError("the model failed to load")'))
    pytester.runpytest("-p", "no:cacheprovider", "--snapshot-update")
    assert not naive.exists()  # syrupy deleted it


def test_the_baseline_of_a_test_that_failed_before_comparing_survives_snapshot_update(
    doctor_project: pytest.Pytester,
) -> None:
    doctor_project.makepyfile(
        test_bias="""
        import pytest


        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result, snapshot):
            raise RuntimeError("the model failed to load")


        @pytest.mark.t2ibias(category="doctor")
        def test_doctor_again(t2ibias_result, snapshot):
            assert t2ibias_result == snapshot
        """
    )
    baseline = doctor_project.path / DOCTOR_BASELINE
    before = baseline.read_bytes()
    result = run(doctor_project, *FAIR, "--snapshot-update")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert baseline.read_bytes() == before
    assert (Path(doctor_project.path) / "__baselines__" / "test_bias" / "test_doctor_again.json").is_file()
    assert "deleted" not in result.stdout.str()
    assert not (doctor_project.path / "__snapshots__").exists()


def test_under_xdist_the_controller_reports_the_workers_baselines(doctor_project: pytest.Pytester) -> None:
    result = run(doctor_project, *FAIR, "-n", "2")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([r".*1 snapshot passed\.$"])


def test_t2i_update_baselines_is_syrupys_update_too(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(test_bias=EQUALS_SNAPSHOT)
    (doctor_project.path / DOCTOR_BASELINE).unlink()
    result = run(doctor_project, *FAIR, "--t2i-update-baselines")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([r".*1 snapshot generated\.$"])
    assert (doctor_project.path / DOCTOR_BASELINE).is_file()
