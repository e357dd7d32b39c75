"""``--t2i-prune-baselines`` deletes only baselines no collected test owns (issue 21 item 2, issue 26 item 3).

Each case deleted a live baseline (or a file outside the project), or pruned nothing without a word,
before prune took its owners from every collected test and checked each file it deletes.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from .workflow import FAST_ARGS, run_bias

FAIR = ["--t2i-model", "synthetic:fair.yaml"]
PRUNE = "--t2i-prune-baselines"
TWO_TESTS = """
    import pytest
    from pytest_t2ibias.assertions import assert_no_regression

    @pytest.mark.t2ibias(category="doctor")
    def test_doctor(t2ibias_result):
        assert_no_regression(t2ibias_result)

    @pytest.mark.t2ibias(category="culture")
    def test_culture(t2ibias_result):
        assert_no_regression(t2ibias_result)
    """


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


def _folder(pytester: pytest.Pytester) -> Path:
    return pytester.path / "__baselines__" / "test_bias"


@pytest.fixture
def approved(pytester: pytest.Pytester, fair_model: str) -> pytest.Pytester:
    """Two bias tests with approved baselines, and the baseline of a removed test (the one to prune)."""
    pytester.makepyfile(test_bias=textwrap.dedent(TWO_TESTS))
    (pytester.path / "fair.yaml").write_text(fair_model)
    done = run(pytester, *FAIR, "--t2i-update-baselines")
    assert done.ret == pytest.ExitCode.OK, done.stdout.str()
    folder = _folder(pytester)
    (folder / "test_removed.json").write_bytes((folder / "test_doctor.json").read_bytes())
    return pytester


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("plugin", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_a_node_id_selection_is_partial_and_prunes_nothing(approved: pytest.Pytester, plugin: list[str]) -> None:
    before = _files(_folder(approved))
    result = run(approved, *FAIR, PRUNE, "test_bias.py::test_doctor", *plugin)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([r"  baselines not pruned: .*"])
    assert _files(_folder(approved)) == before


def test_tests_a_conftest_drops_keep_their_baselines(approved: pytest.Pytester) -> None:
    approved.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            items[:] = [item for item in items if "culture" not in item.name]
        """
    )
    before = _files(_folder(approved))
    result = run(approved, *FAIR, PRUNE)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert _files(_folder(approved)) == before


def test_a_symlinked_store_never_loses_a_file_outside_the_rootdir(
    approved: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    folder = _folder(approved)
    for path in folder.iterdir():
        path.rename(outside / path.name)
    (outside / "unrelated.json").write_text('{"not": "a baseline"}')
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)
    before = _files(outside)
    result = run(approved, *FAIR, PRUNE)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([r"baselines: 2 compared$"])
    assert _files(outside) == before


@pytest.mark.parametrize("plugin", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_a_full_passing_run_prunes_only_the_removed_tests_baseline(
    approved: pytest.Pytester, plugin: list[str]
) -> None:
    folder = _folder(approved)
    (folder / "notes.json").write_text('{"written": "by hand"}')  # not a baseline: never the store's to delete
    result = run(approved, *FAIR, PRUNE, *plugin)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([rf"  PRUNED {re.escape(str(folder / 'test_removed.json'))}$"])
    assert sorted(_files(folder)) == ["notes.json", "test_culture.json", "test_doctor.json"]


@pytest.mark.parametrize("selection", [["-k", "doctor"], ["test_bias.py::test_doctor"]], ids=["deselected", "node-id"])
def test_a_test_not_selected_is_not_called_unused(approved: pytest.Pytester, selection: list[str]) -> None:
    (_folder(approved) / "test_removed.json").unlink()
    result = run(approved, *FAIR, *selection)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.no_re_match_line(r"  \d+ unused .*")


def test_an_unselected_tests_baseline_is_kept_while_the_removed_ones_is_named(approved: pytest.Pytester) -> None:
    result = run(approved, *FAIR, "-k", "doctor")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.re_match_lines([r"  1 unused .*", rf"    {re.escape(str(_folder(approved) / 'test_removed.json'))}$"])
    assert os.path.exists(_folder(approved) / "test_culture.json")
