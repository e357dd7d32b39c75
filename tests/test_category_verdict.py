"""A category's verdict is computed once (``RunResult.category_verdicts``) and every report reads it."""

from __future__ import annotations

import pytest

from pytest_t2ibias.judge.verdicts import Check, worst_of
from pytest_t2ibias.report.html import category_views
from pytest_t2ibias.report.markdown import markdown_summary
from pytest_t2ibias.report.summary import summary_lines, ungated
from pytest_t2ibias.results import BiasTestResult, CategoryResultModel, RunResult, category_verdict


def _check(category: str, metric: str, verdict: str) -> Check:
    return Check(category=category, metric=metric, kind="bound", verdict=verdict, value=0.5, interval=None,
                 threshold="<= 0.4", note=f"{verdict} note")  # fmt: skip


def _category() -> CategoryResultModel:
    return CategoryResultModel(suite="t2i-biasbench", model="m", scorer="s", mode="strict", n=10,
                               metrics={"parity_difference": 0.5})  # fmt: skip


def _run() -> RunResult:
    tests = [
        BiasTestResult.from_checks("t.py::a", "doctor", [_check("doctor", "parity_difference", "pass")]),
        BiasTestResult.from_checks("t.py::b", "doctor", [_check("doctor", "male_share", "fail")]),
        BiasTestResult.from_checks("t.py::c", "nurse", [_check("nurse", "entropy", "warn")]),
        BiasTestResult.from_checks("t.py::d", "cook", [], problem="no baseline"),
        BiasTestResult.from_checks("t.py::e", "pilot", [_check("pilot", "entropy", "pass")]),
        BiasTestResult.from_checks("t.py::f", "aggregate", [_check("aggregate", "amplification", "fail")]),
    ]
    names = ["doctor", "nurse", "cook", "pilot", "chef"]
    return RunResult.of({n: _category() for n in names}, tests)


def test_each_category_has_one_verdict() -> None:
    verdicts = _run().category_verdicts()
    assert {n: v.verdict for n, v in verdicts.items()} == {
        "doctor": "fail", "nurse": "warn", "cook": "fail", "pilot": "pass", "chef": "not gated", "aggregate": "fail"
    }  # fmt: skip
    assert verdicts["doctor"].failed == ("male_share",)
    assert verdicts["nurse"].warned == ("entropy",)
    assert verdicts["cook"].problems == ("no baseline",)


def test_every_report_reads_the_same_verdict() -> None:
    run = _run()
    verdicts = run.category_verdicts()
    assert ungated(run) == ["chef"]
    html = {view.name: view.verdict for view in category_views(run)}
    assert html == {n: v.verdict for n, v in verdicts.items() if n in run.categories}
    table = markdown_summary(run)
    for name in ("doctor", "nurse", "pilot"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert {"fail": "FAIL", "warn": "WARN", "pass": "pass"}[verdicts[name].verdict] in row
    terminal = "\n".join(summary_lines(run, None))
    assert "fail (male_share)" in terminal and "warn (entropy)" in terminal and "fail (no baseline)" in terminal


@pytest.mark.parametrize(
    ("verdicts", "worst"), [([], "pass"), (["pass"], "pass"), (["pass", "warn"], "warn"), (["warn", "fail"], "fail")]
)
def test_worst_of(verdicts: list[str], worst: str) -> None:
    assert worst_of(verdicts) == worst
    checks = [_check("x", "m", v) for v in verdicts]
    assert category_verdict([BiasTestResult.from_checks("t", "x", checks)]).verdict == (
        worst if verdicts else "not gated"
    )
