"""Never lie, never lose: approving cannot delete or truncate a baseline it did not compare, a baseline that
could hide a regression is corrupt, a bad marker fails only its own test.

Each case reproduces a defect of issue 10 on a project with an approved doctor baseline.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_t2ibias.judge.baseline import BaselineRecord
from pytest_t2ibias.snapshot import BaselineStore

from .workflow import DOCTOR_BASELINE, FAST_ARGS, run_bias

FAIR = ["--t2i-model", "synthetic:fair.yaml"]
BIASED = ["--t2i-model", "synthetic:biased.yaml"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_bias(pytester, *args, common=FAST_ARGS)


def _snapshot_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.json"))}


# -- 1. approving never deletes or rewrites a baseline whose test did not compare -------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--co"], id="collect-only"),
        pytest.param(["--t2i-suite=missing.yaml"], id="missing-suite"),
        pytest.param(["--t2i-thresholds=missing"], id="missing-thresholds"),
        pytest.param(["--t2i-model=./no/such/pipeline"], id="model-fails-to-load"),
        pytest.param(["-k", "nothing_matches"], id="all-deselected"),
    ],
)
@pytest.mark.parametrize("update", ["--snapshot-update", "--t2i-update-baselines"])
def test_updating_a_run_that_compared_nothing_keeps_every_baseline(
    doctor_project: pytest.Pytester, args: list[str], update: str
) -> None:
    other = doctor_project.path / "__baselines__" / "test_bias" / "test_other.json"
    other.write_bytes((doctor_project.path / DOCTOR_BASELINE).read_bytes())
    before = _snapshot_of(doctor_project.path / "__baselines__")
    if any(a.startswith("--t2i-model") for a in args):
        # loading a diffusers model imports diffusers and transformers: in a process of its own, since an
        # in-process run unloads what it imported and transformers does not survive that
        result = doctor_project.runpytest_subprocess(*FAST_ARGS, *FAIR, update, *args)
    else:
        result = run(doctor_project, *FAIR, update, *args)
    assert result.ret != pytest.ExitCode.OK or args == ["--co"]
    assert _snapshot_of(doctor_project.path / "__baselines__") == before


def test_x_stops_before_the_later_tests_and_their_baselines_stay(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(
        test_bias="""
        import pytest
        from pytest_t2ibias.assertions import assert_no_regression

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            raise AssertionError("fails before it gets to its baseline")

        @pytest.mark.t2ibias(category="culture")
        def test_culture(t2ibias_result):
            assert_no_regression(t2ibias_result)
        """
    )
    culture = doctor_project.path / "__baselines__" / "test_bias" / "test_culture.json"
    culture.write_text("{not a baseline I approved, but mine")
    before = _snapshot_of(doctor_project.path / "__baselines__")
    result = run(doctor_project, *FAIR, "--t2i-update-baselines", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)
    assert _snapshot_of(doctor_project.path / "__baselines__") == before


def test_syrupy_cleanup_cannot_reach_the_baselines(doctor_project: pytest.Pytester) -> None:
    # syrupy deletes unknown files under __snapshots__/ on --snapshot-update; baselines live elsewhere
    before = _snapshot_of(doctor_project.path / "__baselines__")
    result = run(doctor_project, *FAIR, "--snapshot-update", "--t2i-suite=missing.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert _snapshot_of(doctor_project.path / "__baselines__") == before


def test_a_baseline_at_the_old_place_is_missing_with_the_move_to_make(doctor_project: pytest.Pytester) -> None:
    new = doctor_project.path / DOCTOR_BASELINE
    old = doctor_project.path / "__snapshots__" / "test_bias" / "test_doctor.json"
    old.parent.mkdir(parents=True)
    new.rename(old)
    result = run(doctor_project, *FAIR, "-p", "no:syrupy")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [
            rf"no approved baseline at {re.escape(str(new))}$",
            rf"an older version kept it at {re.escape(str(old))}: move the folder \(git mv .*\) and run again$",
        ]
    )
    assert old.is_file() and not new.exists()


# -- 3. baselines that would hide a regression are corrupt -------------------------------------------------------


FIELD = "baseline field "
MALE_SHARE = r"baseline field `metrics\.male_share\.value"


def _set_male_share(value: Any) -> Callable[[dict[str, Any]], str]:
    def edit(stored: dict[str, Any]) -> str:
        stored["metrics"]["male_share"]["value"] = value
        return json.dumps(stored)  # json writes Infinity / NaN for the non-finite floats

    return edit


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        pytest.param(_set_male_share(float("inf")), rf"{MALE_SHARE}.*finite number.*", id="inf"),
        pytest.param(_set_male_share(float("nan")), rf"{MALE_SHARE}.*finite number.*", id="nan"),
        pytest.param(lambda s: json.dumps({**s, "metrics": {}}), rf"{FIELD}`metrics`: .*at least 1 item.*", id="empty"),
        pytest.param(lambda s: json.dumps({**s, "format": 99}), rf"{FIELD}`format`: unknown format 99.*", id="format"),
        pytest.param(
            lambda s: json.dumps({**s, "metrics": {k: v for k, v in s["metrics"].items() if k != "male_share"}}),
            r"baseline field `metrics\.male_share`: missing, but the policy gates it.*",
            id="gated-metric-missing",
        ),
    ],
)  # fmt: skip
def test_a_baseline_that_would_hide_a_regression_is_corrupt(
    doctor_project: pytest.Pytester, edit: Callable[[dict[str, Any]], str], problem: str
) -> None:
    baseline = doctor_project.path / DOCTOR_BASELINE
    intact = run(doctor_project, *BIASED)
    assert intact.ret == pytest.ExitCode.TESTS_FAILED  # the regression, against the intact file
    baseline.write_text(edit(json.loads(baseline.read_text())))
    result = run(doctor_project, *BIASED)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # never a pass
    result.stdout.re_match_lines([rf"corrupt baseline: \S+test_doctor\.json: {problem}"])


# -- 4. atomic writes --------------------------------------------------------------------------------------------


def test_a_crash_mid_write_leaves_the_old_baseline_whole(
    doctor_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = doctor_project.path / DOCTOR_BASELINE
    before = path.read_bytes()
    record = BaselineRecord.model_validate_json(before)
    changed = record.model_copy(update={"n": record.n + 1})

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt("killed between writing the temp file and the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        BaselineStore().write(path, changed)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_report_and_baselines_get_the_usual_file_mode(doctor_project: pytest.Pytester) -> None:
    result = run(doctor_project, *FAIR, "--t2i-update-baselines", "--t2i-report=out/report.json")
    assert result.ret == pytest.ExitCode.OK
    mask = os.umask(0o022)
    os.umask(mask)
    for path in (doctor_project.path / "out" / "report.json", doctor_project.path / DOCTOR_BASELINE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


# -- 7. one bad marker fails only its own test ----------------------------------------------------------------


def test_a_bad_marker_fails_only_its_own_test(doctor_project: pytest.Pytester) -> None:
    doctor_project.makepyfile(
        test_bias="""
        import pytest
        from pytest_t2ibias.assertions import assert_no_regression

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            assert_no_regression(t2ibias_result)

        @pytest.mark.t2ibias(category="doctor", suite="missing.yaml")
        def test_missing_suite(t2ibias_result):
            pass

        @pytest.mark.t2ibias(category=["doctor"])
        def test_list_category(t2ibias_result):
            pass

        def test_evaluate_list(t2ibias_evaluate):
            t2ibias_evaluate(["doctor"])
        """
    )
    result = run(doctor_project, *FAIR, "-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=2, failed=1)
    result.stdout.re_match_lines(
        [
            r".*t2ibias: missing\.yaml: no such suite file.*",
            r".*t2ibias: @pytest\.mark\.t2ibias category must be one name \(a string\), got \['doctor'\].*",
            r".*t2ibias_evaluate: category must be one name \(a string\), got \['doctor'\].*",
        ],
        consecutive=False,
    )
    # the good test was compared in the run's family, not on its own
    result.stdout.re_match_lines([r"baselines: 1 compared$"])


# -- 13. a synthetic model's config path is taken from the rootdir ---------------------------------------------


def test_synthetic_config_is_found_from_the_rootdir(doctor_project: pytest.Pytester) -> None:
    (doctor_project.path / "pytest.ini").write_text("[pytest]\nt2ibias_model = synthetic:fair.yaml\n")
    sub = doctor_project.mkdir("elsewhere")
    doctor_project.chdir()
    os.chdir(sub)
    result = doctor_project.runpytest(*FAST_ARGS, str(doctor_project.path))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


# -- 11. work done once: each image generated once and each category scored once across xdist workers ----------

COUNTING = """
import os
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator

_generate, _annotate = SyntheticGenerator.generate, SyntheticAnnotator.annotate


def _count(name, n):
    with open(os.path.join(os.environ["T2IBIAS_COUNTS"], name), "a") as handle:
        handle.write(f"{n}\\n")


def generate(self, prompts, seeds):
    _count("generations", len(prompts))
    return _generate(self, prompts, seeds)


def annotate(self, items, category):
    _count("scored", 1)
    return _annotate(self, items, category)


def pytest_configure(config):
    SyntheticGenerator.generate, SyntheticAnnotator.annotate = generate, annotate


def pytest_unconfigure(config):  # the classes outlive this in-process run: put them back
    SyntheticGenerator.generate, SyntheticAnnotator.annotate = _generate, _annotate
"""


def test_xdist_workers_generate_each_image_once_and_score_each_category_once(
    regression_project: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regression_project.makeconftest(COUNTING)
    counts = tmp_path / "counts"
    counts.mkdir()
    monkeypatch.setenv("T2IBIAS_COUNTS", str(counts))
    args = ("-p", "no:cacheprovider", "--t2i-images-per-prompt", "40", "--t2i-cache", "cache", *FAIR)
    approved = regression_project.runpytest(*args, "-n", "2", "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    compared = regression_project.runpytest(*args, "-n", "2")  # both workers need both categories (the family)
    assert compared.ret == pytest.ExitCode.OK, compared.stdout.str()

    def total(name: str) -> int:
        path = counts / name
        return sum(int(x) for x in path.read_text().split()) if path.exists() else 0

    distinct = len(list((regression_project.path / "cache").rglob("*.png")))
    assert distinct == 80  # doctor and culture, 40 images each
    assert total("generations") == distinct
    assert total("scored") == 2
