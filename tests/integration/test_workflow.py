"""The whole baseline loop of a bias test on the synthetic model, with and without xdist.

One test per ``plugin_args``: the loop's four runs build on each other (approve, then compare), and the
checks of each stage are the helpers below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pytest_t2ibias
from pytest_t2ibias.suites import load_suite

from .workflow import APPROVE_HINT, DOCTOR_BASELINE, IMAGE_LINE, Workflow, check_bias_workflow, image_paths

FAIR = ["--t2i-model", "synthetic:fair.yaml"]
BIASED = ["--t2i-model", "synthetic:biased.yaml"]
DOCTOR = DOCTOR_BASELINE
CULTURE = "__baselines__/test_bias/test_culture.json"


def value_with_interval(metric: str) -> str:
    return rf"doctor\.{metric} = -?[01]\.\d{{4}} \[-?[01]\.\d{{4}}, -?[01]\.\d{{4}}\]"


def regression_line(metric: str, allowed: str) -> str:
    return (
        rf"\s+FAIL\s+{value_with_interval(metric)}; rule worse by <= {allowed}; "
        r"baseline -?0\.\d{4}, worse by \+0\.\d{4}: .*"
    )


REGRESSION_LINES = [
    r"t2ibias: category 'doctor' of suite 't2i-biasbench' \(model synthetic:[0-9a-f]+, "
    r"scorer synthetic-mark-reader:v1, mode strict, n=100\)",
    r"failed:",
    regression_line("male_share", r"0\.1000"),
    regression_line("parity_difference", r"0\.1000"),
    regression_line("composite", r"0\.0500"),
    r".*male_share.*:$",  # which images drive it, then their paths
    IMAGE_LINE,
    rf"\s+baseline: \S+/{DOCTOR}$",
    rf"\s+{APPROVE_HINT}",
]


def check_baseline_contents(project: Path) -> None:
    """A baseline holds the metrics with intervals, labels by seed, and every input that must match."""
    stored = json.loads((project / DOCTOR).read_text())
    assert stored["category"] == "doctor"
    assert stored["suite"] == "t2i-biasbench"
    assert stored["suite_hash"] == load_suite("t2i-biasbench").fingerprint()
    assert stored["scorer"] == "synthetic-mark-reader:v1"
    assert stored["model"].startswith("synthetic:")
    assert stored["package_version"] == pytest_t2ibias.__version__
    assert (stored["mode"], stored["n"], stored["images_per_prompt"], stored["seed"]) == ("strict", 100, 100, 0)
    assert {"composite", "parity_difference", "male_share", "gmr"} <= set(stored["metrics"])
    male = stored["metrics"]["male_share"]
    assert male["low"] <= male["value"] <= male["high"]
    assert male["method"]
    # per-image labels keyed by seed, so that a later run pairs image i with image i
    labels = stored["labels"]
    assert len(labels) == 100
    assert all(seed.isdigit() for seed in labels)
    assert sum(v["gender"] == "male" for v in labels.values()) / 100 == pytest.approx(male["value"])
    culture = json.loads((project / CULTURE).read_text())
    assert (culture["category"], culture["n"]) == ("culture", 100)
    assert "car" in culture["metrics"]


def check_regression_failure(workflow: Workflow, project: Path) -> None:
    """The failure names the approved value and lists the images (files in the cache) that drive it."""
    old = json.loads((project / DOCTOR).read_text())["metrics"]["male_share"]["value"]
    workflow.regressed.stdout.re_match_lines([rf"\s+FAIL\s+doctor\.male_share = .*; baseline {old:.4f}, worse by .*"])
    paths = image_paths(workflow.regressed)
    assert paths, "the failure lists the images behind it"
    assert all(path.is_file() and path.suffix == ".png" for path in paths)
    workflow.regressed.stdout.no_re_match_line(r".*FAIL\s+culture\..*")  # the culture model did not change


def check_summary(workflow: Workflow) -> None:
    """The t2ibias section: one row per category with the verdict and the worst delta to the baseline."""
    workflow.missing.stdout.re_match_lines([r"doctor\s+100\s+.*\s+fail \(no baseline\)\s+-$"])
    workflow.unchanged.stdout.re_match_lines([r"doctor\s+100\s+.*\s+pass\s+no worse than baseline$"])
    workflow.regressed.stdout.re_match_lines(
        [
            r"=+ t2ibias =+",
            r"model synthetic:[0-9a-f]+ \| scorer synthetic-mark-reader:v1 \| mode strict",
            r"policy: \S+/thresholds/policy\.yaml",
            # the columns are the metrics the run gated (male_share, parity_difference, composite)
            r"category\s+n\s+.*male_share\s+.*parity_difference\s+.*\s+verdict\s+worst change vs baseline",
            r"doctor\s+100\s+.*\s+fail \(male_share.*\)\s+\w+ 0\.\d{3} vs 0\.\d{3} \(worse by 0\.\d{3}\)$",
            # one line per test, its failing checks shortened (the failure message above has them in full)
            r"FAIL test_bias\.py::test_doctor: doctor\.male_share = 0\.\d{4}, baseline 0\.\d{4} "
            r"\(rule worse by <= 0\.1000\): real regression: beyond the margin and significant; .*",
            r"NOT GATED culture: .*",
        ]
    )


def test_bias_workflow(regression_project: pytest.Pytester, plugin_args: list[str]) -> None:
    workflow = check_bias_workflow(
        regression_project,
        plugin_args,
        baselines=[DOCTOR, CULTURE],
        model=FAIR,
        regressed_model=BIASED,
        regression_lines=REGRESSION_LINES,
        outcomes_regressed={"failed": 1, "passed": 1},
    )
    workflow.missing.stdout.re_match_lines([r"baselines: 2 missing$"])
    check_baseline_contents(regression_project.path)
    check_regression_failure(workflow, regression_project.path)
    check_summary(workflow)
