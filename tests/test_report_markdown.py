"""The CI job summary (GITHUB_STEP_SUMMARY): checked against a golden file, and written by a pytest run."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_t2ibias.judge.verdicts import Check
from pytest_t2ibias.metrics.intervals import Interval
from pytest_t2ibias.report.markdown import markdown_summary, mask_credentials, md
from pytest_t2ibias.results import BiasTestResult, CategoryResultModel, RunResult, SkippedTest

GOLDEN = Path(__file__).parent / "golden" / "ci_summary.md"


def _category(n: int, male: float) -> CategoryResultModel:
    return CategoryResultModel(
        suite="t2i-biasbench",
        model="https://user:hunter2@models.example/sd|v2",
        scorer="clip:tiny-open_clip|margin=0.0|person=-inf",
        mode="strict",
        n=n,
        metrics={"male_share": male, "parity_difference": 2 * male - 1},
        intervals={"male_share": Interval(male - 0.1, male + 0.1, "exact", 0.95)},
    )


def _run() -> RunResult:
    fail = Check(category="doctor", metric="parity_difference", kind="regression", verdict="fail", value=0.4,
                 interval=None, threshold="worse by <= 0.1000", note="real regression: beyond the margin and "
                 "significant (paired permutation over 200 pairs, adjusted p=0.0004)", baseline=0.1, delta=0.3,
                 allowed=0.1, p_value=0.0004, method="paired permutation")  # fmt: skip
    warn = Check(category="beauty", metric="composite", kind="bound", verdict="warn", value=0.56, interval=None,
                 threshold="<= 0.55", note="inconclusive: above the bound but not significant | <b>x</b>")  # fmt: skip
    ok = Check(category="beauty", metric="parity_difference", kind="regression", verdict="pass", value=0.1,
               interval=None, threshold="worse by <= 0.1000", note="within", baseline=0.1, delta=0.0)  # fmt: skip
    return RunResult.of(
        {"beauty": _category(200, 0.55), "doctor": _category(200, 0.7)},
        [
            BiasTestResult.from_checks("test_bias.py::test_beauty", "beauty", [warn, ok]),
            BiasTestResult.from_checks("test_bias.py::test_doctor[*weird*]", "doctor", [fail]),
        ],
        not_run=[SkippedTest(nodeid="test_bias.py::test_gpu", reason="needs a CUDA device")],
        baselines={"a.json": "compared", "b.json": "compared"},
    )


def test_summary_matches_the_golden_file() -> None:
    text = markdown_summary(_run(), "thresholds/t2i-biasbench.yaml")
    if os.environ.get("T2IBIAS_REGOLD"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_user_text_is_inert_and_credentials_never_shown() -> None:
    text = markdown_summary(_run())
    assert "hunter2" not in text and "https://\\*\\*\\*@models.example" in text
    assert "<b>" not in text and "\\<b\\>" in text  # a note cannot inject markup
    assert "\\*weird\\*" in text  # a test id cannot turn into emphasis
    assert md("a|b") == "a\\|b"  # nor split a table cell
    assert mask_credentials("s3://key:secret@bucket/x and gs://tok@b/y") == "s3://***@bucket/x and gs://***@b/y"


def test_summary_says_what_failed_and_what_did_not_run() -> None:
    text = markdown_summary(_run())
    assert text.startswith("## t2ibias: FAILED")
    assert "| doctor | 200 | FAIL | parity\\_difference | - |" in text
    assert "| beauty | 200 | WARN | - | composite |" in text
    assert "| 0.4000 | 0.1000 | +0.3000 |" in text
    assert "### 1 bias test did not run" in text
