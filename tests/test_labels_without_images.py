"""Precomputed labels need no image: the plan's image ids are looked up, no model is loaded or called."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.cli import main
from pytest_t2ibias.errors import LabelsFileError
from pytest_t2ibias.generate.objects import LazyGenerator
from pytest_t2ibias.generate.stage import plan_requests
from pytest_t2ibias.pipeline import evaluate_suite, image_id
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
HEADER = "image_id,gender,explicit,implied,unexpected,keywords\n"


def _ids(category: str = "doctor", per_prompt: int = 4) -> list[str]:
    return [image_id(r.category, r.prompt_index, r.image_index) for r in plan_requests(SUITE, per_prompt, [category])]


def _csv(path: Path, ids: Sequence[str], gender: str = "female") -> Path:
    rows = "".join(f"{i},{gender if n % 2 else 'male'},doctor,,,\n" for n, i in enumerate(ids))
    path.write_text(HEADER + rows)
    return path


def _never() -> LazyGenerator:
    def load() -> object:
        raise AssertionError("the model was loaded")

    return LazyGenerator(load, "hub:org/model@main")  # type: ignore[arg-type]


def test_labels_are_looked_up_by_planned_image_id_without_any_model(tmp_path: Path) -> None:
    annotator = load_annotator(f"labels:{_csv(tmp_path / 'labels.csv', _ids())}", SUITE)
    evaluation = evaluate_suite(SUITE, _never(), annotator, images_per_prompt=4, categories=["doctor"])
    result = evaluation.categories["doctor"]
    assert [r.labels["gender"] for r in result.records] == ["male", "female", "male", "female"]
    assert result.model == "hub:org/model@main"
    assert evaluation.generation is not None and evaluation.generation.new == 0
    assert evaluation.warnings == []


def test_missing_ids_are_one_error_line_or_counted_warnings(tmp_path: Path) -> None:
    path = _csv(tmp_path / "labels.csv", _ids()[:3])
    with pytest.raises(LabelsFileError, match=r"labels\.csv: no labels for 1 of 4 planned images of category "):
        evaluate_suite(SUITE, _never(), load_annotator(f"labels:{path}", SUITE), images_per_prompt=4,
                       categories=["doctor"])  # fmt: skip
    lenient = load_annotator(f"labels:{path}", SUITE, strict_labels=False)
    evaluation = evaluate_suite(SUITE, _never(), lenient, images_per_prompt=4, categories=["doctor"])
    assert len(evaluation.categories["doctor"].records) == 3
    assert len(evaluation.warnings) == 1 and "doctor_p0_i3" in evaluation.warnings[0]


def test_ids_of_no_planned_image_are_one_error_line(tmp_path: Path) -> None:
    path = _csv(tmp_path / "labels.csv", [*_ids(), "doctor_p0_i99", "typo_p0_i0"])
    with pytest.raises(LabelsFileError, match=r"2 labelled image ids belong to no planned image of suite"):
        evaluate_suite(SUITE, _never(), load_annotator(f"labels:{path}", SUITE), images_per_prompt=4,
                       categories=["doctor"])  # fmt: skip
    lenient = load_annotator(f"labels:{path}", SUITE, strict_labels=False)
    evaluation = evaluate_suite(SUITE, _never(), lenient, images_per_prompt=4, categories=["doctor"])
    assert len(evaluation.warnings) == 1 and "typo_p0_i0" in evaluation.warnings[0]


def test_a_value_outside_the_groups_names_file_line_field_and_value(tmp_path: Path) -> None:
    path = _csv(tmp_path / "labels.csv", _ids(), gender="femme")
    with pytest.raises(LabelsFileError, match=r"labels\.csv: line 3 \(image 'doctor_p0_i1'\): field `gender`: 'femme'"):
        load_annotator(f"labels:{path}", SUITE)
    lenient = load_annotator(f"labels:{path}", SUITE, strict_labels=False)
    evaluation = evaluate_suite(SUITE, _never(), lenient, images_per_prompt=4, categories=["doctor"])
    assert len(evaluation.categories["doctor"].records) == 2
    assert any(w.startswith("2 labelled images dropped (values outside the suite)") for w in evaluation.warnings)


def test_cli_evaluate_with_labels_generates_nothing_and_loads_no_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path / "labels.csv", _ids())
    # a hub id that cannot be reached here: loading it would fail the command
    args = ["evaluate", "--model", "org/never-downloaded", "--scorer", f"labels:{path}", "--category", "doctor",
            "--images-per-prompt", "4", "--cache", str(tmp_path / "cache"), "--format", "json",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr()
    assert "0 images: 0 generated, 0 read from the cache; 4 scored" in out.err
    assert json.loads(out.out)["categories"]["doctor"]["model"] == "hub:org/never-downloaded@main"
    _csv(path, _ids()[:2])
    assert main(args) == 1
    assert "no labels for 2 of 4 planned images of category 'doctor'" in capsys.readouterr().err
    assert main([*args, "--allow-label-problems"]) == 0
    assert "t2ibias evaluate: warning: " in capsys.readouterr().err


def test_html_report_of_labels_shows_no_grids_and_says_why(tmp_path: Path) -> None:
    from pytest_t2ibias.report.html import write_html

    annotator = load_annotator(f"labels:{_csv(tmp_path / 'labels.csv', _ids())}", SUITE)
    evaluation = evaluate_suite(SUITE, _never(), annotator, images_per_prompt=4, categories=["doctor"])
    page = write_html(evaluation.result, tmp_path / "report.html").read_text()
    assert "No image grids: the labels were precomputed (labels:labels.csv#" in page
    assert "<img" not in page.split("Labels by group")[1].split("</table>")[0]


PLUGIN_TEST = """
import sys
import pytest
from pytest_t2ibias.assertions import assert_no_regression

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_no_regression(t2ibias_result)
    assert len(t2ibias_result.records) == 4
    assert "diffusers" not in sys.modules  # no model was built
"""


@pytest.mark.parametrize("how", ["spec", "fixture-object", "fixture-mapping"])
def test_plugin_with_labels_generates_nothing(pytester: pytest.Pytester, tmp_path: Path, how: str) -> None:
    path = _csv(pytester.path / "labels.csv", _ids())
    scorer = "labels:labels.csv" if how == "spec" else "tiny"
    pytester.makeini(
        f"[pytest]\nt2ibias_model = org/never-downloaded\nt2ibias_scorer = {scorer}\nt2ibias_images_per_prompt = 4\n"
    )
    if how == "fixture-object":  # the same object a labels: spec makes
        pytester.makeconftest(
            """
            import pytest
            from pathlib import Path
            from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

            @pytest.fixture(scope="session")
            def t2ibias_scorer(t2ibias_suite):
                return PrecomputedLabels.from_file(Path("labels.csv"), t2ibias_suite)
            """
        )
    elif how == "fixture-mapping":
        data = {
            line.split(",")[0]: {"labels": {"gender": line.split(",")[1]},
                                 "present": {"explicit": ["doctor"], "implied": [], "unexpected": [], "keywords": []}}
            for line in path.read_text().splitlines()[1:]
        }  # fmt: skip
        pytester.makeconftest(
            f"""
            import pytest

            @pytest.fixture(scope="session")
            def t2ibias_scorer():
                return {data!r}
            """
        )
    (pytester.path / "thresholds").mkdir()  # a regression rule: the test approves a baseline
    (pytester.path / "thresholds" / "t2i-biasbench.yaml").write_text(
        "suite: t2i-biasbench\ncategories:\n  doctor:\n    male_share: {regression: {absolute: 0.1}}\n"
    )
    pytester.makepyfile(test_bias=textwrap.dedent(PLUGIN_TEST))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--t2i-update-baselines")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    stored = json.loads((pytester.path / "__baselines__" / "test_bias" / "test_doctor.json").read_text())
    assert stored["model"] == "hub:org/never-downloaded@main"
    assert stored["scorer"].startswith("labels:")
