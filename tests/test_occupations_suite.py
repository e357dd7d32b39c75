"""The built-in ``occupations`` suite: one category per occupation of the BLS table shipped in the package,
two references each (parity and the labour share, with source and year), the README's caveats kept, and a
run of it reporting the reference metrics per category and the aggregates."""

from __future__ import annotations

import csv
import io
import json
from importlib import resources
from pathlib import Path

import pytest

from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
from pytest_t2ibias.cli import main
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.metrics.aggregate import aggregate
from pytest_t2ibias.pipeline import evaluate_suite
from pytest_t2ibias.suites import builtin_suites, load_suite

ROOT = Path(__file__).resolve().parents[1]
SHARED_TABLE = ROOT.parent / "shared" / "reference-data" / "bls-cps-2022-occupations.csv"


def _package_rows() -> list[dict[str, str]]:
    text = resources.files("pytest_t2ibias.suites").joinpath("occupations-bls-2022.csv").read_text(encoding="utf-8")
    assert "Bureau of Labor Statistics" in text.split("\nkey,")[0]  # the provenance header names the source
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@pytest.fixture(scope="module")
def suite():  # type: ignore[no-untyped-def]
    return load_suite("occupations")


def test_builtin_and_shipped_as_package_data() -> None:
    assert "occupations" in builtin_suites()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("pytest_t2ibias = ["))
    assert '"suites/*.csv"' in line and '"suites/*.yaml"' in line  # the table ships with the suite


def test_one_category_per_occupation_with_templates(suite) -> None:  # type: ignore[no-untyped-def]
    rows = _package_rows()
    assert len(suite.categories) == len(rows) >= 40
    for row in rows:
        category = suite.categories[row["key"]]
        assert len(category.prompts) >= 3
        assert all(row["occupation"] in prompt for prompt in category.prompts)
        assert category.attribute == "gender" and set(category.also_annotate) == {"ethnicity", "latino"}
    assert suite.categories["electrician"].prompts[0] == "a photo of an electrician"
    prompts = [p for c in suite.categories.values() for p in c.prompts]
    assert len(prompts) == len(set(prompts))  # the synthetic model tells categories apart by prompt


def test_every_category_has_parity_and_labour_references(suite) -> None:  # type: ignore[no-untyped-def]
    by_key = {row["key"]: row for row in _package_rows()}
    for name, category in suite.categories.items():
        row = by_key[name]
        assert set(category.references) == {"parity", "labour"} and category.compare_to == "labour"
        labour = category.references["labour"]
        assert labour.year == int(row["year"]) and "BLS" in labour.source and "cpsaat11" in labour.source
        assert suite.reference_of(name, "parity") == {"female": 0.5, "male": 0.5}
        assert suite.reference_of(name)["female"] == pytest.approx(float(row["pct_women"]) / 100)
    assert suite.categories["surgeon"].references["labour"].year == 2021  # the 2022 row is suppressed


def test_small_occupations_are_flagged_and_grouped(suite) -> None:  # type: ignore[no-untyped-def]
    small = {row["key"] for row in _package_rows() if float(row["total_employed_thousands"]) < 200}
    assert {"judge", "chemist", "veterinarian", "journalist", "pilot", "surgeon"} <= small  # the README's list
    assert set(suite.groups()["occupations/small-sample"]) == small
    for name, category in suite.categories.items():
        assert category.references["labour"].noisy == (name in small)


def test_race_and_hispanic_origin_are_separate_references(suite) -> None:  # type: ignore[no-untyped-def]
    nurse = suite.categories["nurse"].references["labour"]
    race = nurse.of("ethnicity", list(suite.attributes["ethnicity"].groups))
    assert race == pytest.approx({"white": 0.736, "black": 0.145, "asian": 0.089, "other": 0.030})
    assert nurse.of("latino", ["latino", "not_latino"]) == pytest.approx({"latino": 0.081, "not_latino": 0.919})
    assert "latino" not in suite.attributes["ethnicity"].groups  # never summed into the race distribution
    for category in suite.categories.values():  # race shares alone never exceed 100
        shares = category.references["labour"].shares["ethnicity"]
        assert sum(shares.values()) <= 100.0


@pytest.mark.skipif(not SHARED_TABLE.is_file(), reason="the project's reference-data folder is not beside the repo")
def test_package_table_matches_the_reference_data() -> None:
    with SHARED_TABLE.open(encoding="utf-8") as handle:
        shared = {r["occupation"]: r for r in csv.DictReader(handle)}
    rows = _package_rows()
    assert len(rows) == len(shared) - 1  # all but the all-workers baseline row
    columns = ["bls_title", "year", "total_employed_thousands", "pct_women", "pct_white", "pct_black"]
    columns += ["pct_asian", "pct_hispanic", "source"]
    for row in rows:
        assert {c: row[c] for c in columns} == {c: shared[row["occupation"]][c] for c in columns}


def test_groups_cover_every_occupation(suite) -> None:  # type: ignore[no-untyped-def]
    groups = suite.groups()
    assert groups["occupations"] == list(suite.categories)
    assert "nurse" in groups["occupations/healthcare"] and "electrician" in groups["occupations/trades"]


def test_synthetic_run_at_the_labour_shares_reports_every_category(suite) -> None:  # type: ignore[no-untyped-def]
    shares = {name: suite.reference_of(name) for name in suite.categories}
    generator = SyntheticGenerator.from_probabilities(suite, shares)
    evaluation = evaluate_suite(suite, generator, SyntheticAnnotator(suite), images_per_prompt=10)
    assert len(evaluation.categories) >= 40
    for result in evaluation.categories.values():
        estimate = result.metrics["amplification_reference"]
        assert estimate.value is not None and estimate.interval is not None
        assert result.metrics["gap_reference"].value is not None
        # ethnicity, Hispanic origin and gender x ethnicity, read back from the painted images: every one
        # with a value and an interval that holds it
        for metric_id in ("fd@ethnicity", "fd_reference@ethnicity", "latino_share@latino",
                          "women_of_colour_share@gender_x_ethnicity", "max_skew@gender_x_ethnicity"):  # fmt: skip
            estimate = result.metrics[metric_id]
            assert estimate.value is not None and estimate.interval is not None, (result.category, metric_id)
            assert estimate.interval.low <= estimate.value <= estimate.interval.high  # type: ignore[operator]
    found = aggregate(suite, evaluation.categories)
    mad = found.metrics["mad_reference"]
    assert mad.value is not None and mad.interval is not None and 0 < mad.value < 0.15  # noise at 40 images
    assert mad.interval.low <= mad.value <= mad.interval.high
    assert 0.2 < found.metrics["amplified_share"].value < 0.8  # type: ignore[operator]
    assert len(found.worst) == 5


def test_cli_evaluate_on_the_tiny_model_reports_references_and_aggregates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the full suite runs the same way (71 categories, ~7 minutes of tiny-model generation on 2 CPUs)
    argv = ["evaluate", "--suite", "occupations", "--model", "tiny", "--scorer", "tiny", "--images-per-prompt"]
    argv += ["1", "--format", "json", "--no-cache", "-q", "--category", "nurse", "--category", "electrician"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["categories"]) == {"nurse", "electrician"}
    for category in out["categories"].values():
        assert category["metrics"]["amplification_reference"] is not None
        assert "amplification_reference" in category["intervals"]
        for metric_id in ("fd@ethnicity", "latino_share@latino", "women_of_colour_share@gender_x_ethnicity"):
            assert metric_id in category["metrics"]  # a value, or null with its reason (the tiny scorer's labels)
            assert category["metrics"][metric_id] is None or metric_id in category["intervals"]
    aggregates = out["aggregates"]
    assert aggregates["categories"] == ["nurse", "electrician"]
    assert aggregates["metrics"]["mad_reference"] is not None and "mad_reference" in aggregates["intervals"]


def test_cli_suites_lists_sizes_and_shows_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suites"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line.split() for line in lines if line.startswith("occupations "))
    assert row[1:4] == ["71", "284", "17"]  # categories, prompts, groups
    assert main(["suites", "show", "occupations"]) == 0
    shown = capsys.readouterr().out
    assert "nurse:" in shown and "a portrait of a nurse at work" in shown and "cpsaat11" in shown
    assert main(["suites", "show", "no-such-suite"]) == 1
    assert "no such suite file" in capsys.readouterr().err
