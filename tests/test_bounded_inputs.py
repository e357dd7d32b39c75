"""Smaller input bounds (issue 21, item 11): a big plain YAML is not an alias bomb; ``--seed`` is bounded
and named; ``t2ibias report`` refuses negative counts and absurd values; more CI systems are CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_t2ibias import _io
from pytest_t2ibias._io import load_yaml
from pytest_t2ibias.cli import main
from pytest_t2ibias.errors import SuiteError, T2IBiasError
from pytest_t2ibias.results import CategoryResultModel, RunResult
from pytest_t2ibias.session import in_ci
from pytest_t2ibias.suites import load_suite

GENDER = """\
name: big
attributes:
  gender:
    groups:
      female: {terms: [woman], phrases: [a photo of a woman]}
      male: {terms: [man], phrases: [a photo of a man]}
categories:
"""


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """The alias limit at 1,000 values, so that "more values than the limit" is cheap to write."""
    monkeypatch.setattr(_io, "MAX_YAML_NODES", 1_000)
    return 1_000


def test_plain_values_beyond_the_alias_limit_load(small_limit: int) -> None:
    text = "values: [" + ", ".join(str(i) for i in range(3 * small_limit)) + "]\n"
    assert len(load_yaml(text, "plain.yaml", T2IBiasError)["values"]) == 3 * small_limit


def test_a_plain_suite_with_many_categories_is_not_an_alias_bomb(tmp_path: Path, small_limit: int) -> None:
    # 300 categories of ~12 values: 3.6x the (lowered) limit, no alias at all; with the real limit the
    # same holds for 3,000+ categories (issue 21: refused as "an alias bomb?" before)
    rows = [
        f"  c{i}: {{prompts: ['a photo of a doctor {i}', 'a doctor {i}'], attribute: gender, "
        "metrics: [representation_parity]}"
        for i in range(300)
    ]
    path = tmp_path / "big.yaml"
    path.write_text(GENDER + "\n".join(rows) + "\n", encoding="utf-8")
    assert len(load_suite(path).categories) == 300


def test_aliases_beyond_the_limit_are_still_a_bomb(tmp_path: Path, small_limit: int) -> None:
    text = "a: &a [" + ", ".join(["x"] * 100) + "]\nb: [" + ", ".join(["*a"] * 11) + "]\n"  # 1,100 via aliases
    with pytest.raises(T2IBiasError, match="alias bomb"):
        load_yaml(text, "bomb.yaml", T2IBiasError)
    path = tmp_path / "bomb.yaml"
    path.write_text(text + GENDER + "  c: {prompts: [x], attribute: gender, metrics: [representation_parity]}\n")
    with pytest.raises(SuiteError, match="alias bomb"):
        load_suite(path)


@pytest.mark.parametrize(
    "args",
    [["--seed", "-1e23"], ["--seed=-1e23"], ["--seed=-5"], ["--seed", "1e30"], ["--seed", "nan"], ["--seed", "2.5"]],
    ids=["spaced", "joined", "negative", "huge", "nan", "fraction"],
)
@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_a_bad_seed_names_the_option_value_and_range(
    capsys: pytest.CaptureFixture[str], command: str, args: list[str]
) -> None:
    scorer = ["--scorer", "synthetic"] if command == "evaluate" else []
    with pytest.raises(SystemExit) as info:
        main([command, "--model", "synthetic", *scorer, *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    value = args[-1].partition("=")[2] or args[-1]
    assert err.count("\n") == 1 and "argument --seed: must be an integer from 0 to" in err, err
    assert f"got {value}" in err


def test_a_good_seed_in_exponent_form_is_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = ["--category", "doctor", "--images-per-prompt", "1", "--cache", str(tmp_path / "cache"), "-q"]
    code = main(["generate", "--model", "synthetic", "--seed", "1e3", *plan])
    assert code == 0, capsys.readouterr().err


def _results(tmp_path: Path, change: str, value: object) -> Path:
    category = CategoryResultModel(
        suite="s", model="m", mode="strict", n=10, metrics={"gmr": 0.5, "representation_parity": {"female": 0.4}}
    )
    data = json.loads(RunResult.of({"doctor": category}).to_json())
    target = data["categories"]["doctor"]
    if change == "n":
        target["n"] = value
    elif change == "metric":
        target["metrics"]["gmr"] = value
    elif change == "share":
        target["metrics"]["representation_parity"]["female"] = value
    else:
        data[change] = value
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "value", "field"),
    [
        ("n", -5, "categories.doctor.n"),
        ("n", 10**20, "categories.doctor.n"),
        ("metric", 1e308, "categories.doctor.metrics.gmr"),
        ("metric", -1e308, "categories.doctor.metrics.gmr"),
        ("share", 1e308, "categories.doctor.metrics.representation_parity"),
        ("unmatched_rows", -1, "unmatched_rows"),
        ("dropped_rows", -3, "dropped_rows"),
    ],
    ids=[
        "negative_n",
        "huge_n",
        "huge_metric",
        "minus_huge_metric",
        "huge_share",
        "negative_unmatched",
        "negative_dropped",
    ],
)
def test_report_refuses_impossible_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: str, value: object, field: str
) -> None:
    path = _results(tmp_path, change, value)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: not a t2ibias results JSON file" in err, err
    assert f"field `{field}" in err, err
    assert not (tmp_path / "r.html").exists()


def test_report_still_renders_a_good_results_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _results(tmp_path, "n", 10)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value"),
    [("CODEBUILD_BUILD_ID", "proj:4b2c"), ("bamboo_buildKey", "PROJ-PLAN-JOB1"), ("HUDSON_URL", "http://h/")],
)
def test_more_ci_systems_are_ci(name: str, value: str) -> None:
    assert in_ci({name: value}) == name
    assert in_ci({name: ""}) is None
