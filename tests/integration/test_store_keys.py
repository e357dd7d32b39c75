"""One baseline file per test: keyed by the test's classes, name and parameters (issue 21 item 1).

Each case failed before the store keyed baselines by node id: two tests of one name shared a file (the
second approval overwrote the first, and every later run was stale), and a 300-character parametrize id
made approval fail with ``OSError: File name too long``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from pytest_t2ibias.snapshot import StoreIndex, baseline_path, baseline_stem, old_baseline_path

from .workflow import FAST_ARGS, run_bias

FAIR = ["--t2i-model", "synthetic:fair.yaml"]
FOLDER = Path("__baselines__") / "test_bias"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


def _project(pytester: pytest.Pytester, fair_model: str, source: str) -> pytest.Pytester:
    pytester.makepyfile(test_bias=textwrap.dedent(source))
    (pytester.path / "fair.yaml").write_text(fair_model)
    return pytester


TWO_CLASSES = """
    import pytest
    from pytest_t2ibias.assertions import assert_no_regression

    class TestA:
        @pytest.mark.t2ibias(category="doctor")
        def test_cat(self, t2ibias_result):
            assert_no_regression(t2ibias_result)

    class TestB:
        @pytest.mark.t2ibias(category="culture")
        def test_cat(self, t2ibias_result):
            assert_no_regression(t2ibias_result)
    """

LONG_ID = "a" * 300
PARAMETRIZED = f"""
    import pytest
    from pytest_t2ibias.assertions import assert_no_regression

    @pytest.mark.parametrize(
        "category",
        [pytest.param("doctor", id="x/y"), pytest.param("culture", id="x_y"), pytest.param("nature", id="{LONG_ID}")],
    )
    def test_cat(t2ibias_evaluate, category):
        assert_no_regression(t2ibias_evaluate(category))
    """


def _approve_then_compare(pytester: pytest.Pytester, count: int) -> list[Path]:
    approved = run(pytester, *FAIR, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    approved.stdout.re_match_lines([rf"baselines: {count} created$"])
    files = sorted((pytester.path / FOLDER).glob("*.json"))
    assert len(files) == count
    again = run(pytester, *FAIR)
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    again.assert_outcomes(passed=count)
    again.stdout.re_match_lines([rf"baselines: {count} compared$"])
    return files


def test_two_classes_with_one_test_name_get_a_baseline_each(pytester: pytest.Pytester, fair_model: str) -> None:
    _project(pytester, fair_model, TWO_CLASSES)
    files = _approve_then_compare(pytester, 2)
    assert [f.name for f in files] == ["TestA.test_cat.json", "TestB.test_cat.json"]


def test_ids_alike_once_sanitised_and_a_300_character_id_get_a_baseline_each(
    pytester: pytest.Pytester, fair_model: str
) -> None:
    _project(pytester, fair_model, PARAMETRIZED)
    files = _approve_then_compare(pytester, 3)
    names = [f.name for f in files]
    assert "test_cat[x_y].json" in names  # the safe id keeps its readable name
    assert any(re.fullmatch(r"test_cat\[x_y\]-[0-9a-f]{12}\.json", n) for n in names)
    assert max(len(n.encode()) for n in names) <= 120


def test_an_older_file_of_a_class_test_is_read_then_migrated_on_approval(
    pytester: pytest.Pytester, fair_model: str, approved_doctor: str
) -> None:
    _project(pytester, fair_model, TWO_CLASSES.split("class TestB")[0])  # TestA::test_cat alone
    # its baseline as an older version wrote it: keyed by the test's name alone
    old = pytester.path / FOLDER / "test_cat.json"
    old.parent.mkdir(parents=True)
    old.write_text(approved_doctor)
    compared = run(pytester, *FAIR)
    assert compared.ret == pytest.ExitCode.OK, compared.stdout.str()
    compared.stdout.re_match_lines([r"baselines: 1 compared$"])
    compared.stdout.no_re_match_line(r"  \d+ unused .*")
    approved = run(pytester, *FAIR, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    new = pytester.path / FOLDER / "TestA.test_cat.json"
    approved.stdout.re_match_lines([rf"  CREATED {re.escape(str(new))}$", rf"  MIGRATED {re.escape(str(old))}$"])
    assert new.is_file() and not old.exists()


def test_an_older_file_two_tests_could_claim_is_read_by_neither_and_kept(
    pytester: pytest.Pytester, fair_model: str, approved_doctor: str
) -> None:
    _project(pytester, fair_model, TWO_CLASSES)
    old = pytester.path / FOLDER / "test_cat.json"
    old.parent.mkdir(parents=True)
    old.write_text(approved_doctor)
    approved = run(pytester, *FAIR, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    assert old.read_text() == approved_doctor
    approved.stdout.re_match_lines([r"  1 unused .*", rf"    {re.escape(str(old))}$"])


def test_a_plain_module_test_keeps_the_file_name_older_versions_wrote() -> None:
    test_file = Path("/p/test_bias.py")
    for name in ("test_doctor", "test_x[doctor]", "test_x[a-b c]"):
        assert baseline_path(test_file, name) == old_baseline_path(test_file, name)


def test_two_tests_on_one_file_are_refused_naming_both() -> None:
    # not reachable through pytest's own naming; a custom item named with a dot could
    index = StoreIndex.build(
        [
            ("t.py::TestA::test_x", Path("/p/t.py"), ["TestA", "test_x"]),
            ("t.py::TestA.test_x", Path("/p/t.py"), ["TestA.test_x"]),
        ]
    )
    assert set(index.clashes) == {"t.py::TestA::test_x", "t.py::TestA.test_x"}
    message = index.clashes["t.py::TestA.test_x"]
    assert "t.py::TestA::test_x and t.py::TestA.test_x map to one baseline file" in message


def test_every_key_gets_a_distinct_bounded_safe_file_name() -> None:
    ids = ["x/y", "x_y", "x\\y", "x:y", "x\x00y", "..", "a" * 300, "a" * 301, "é" * 200, "x_y]-0123456789ab"]
    stems = [baseline_stem(f"test_x[{i}]") for i in ids]
    assert len(set(stems)) == len(ids)
    assert all(len(f"{s}.json".encode()) <= 120 and not re.search(r"[/\\:\x00]", s) for s in stems)
