"""The scorer-audit benchmark runs ``--quick`` end to end: its last line is the RESULT line in the exact
format, the raw share carries the scorer's bias (about +4 points) and the corrected one much less."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT = re.compile(
    r"RESULT raw_bias_pts=(-?\d+\.\d\d) corrected_bias_pts=(-?\d+\.\d\d) "
    r"coverage=(\d+\.\d) false_fail_with_card=(\d+\.\d) coverage_sparse_min=(\d+\.\d)"
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_scorer_audit")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_quick_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--quick"])
    lines = capsys.readouterr().out.strip().splitlines()
    match = RESULT.fullmatch(lines[-1])
    assert match is not None, lines[-1]
    raw, corrected, coverage, false_fail, sparse = (float(x) for x in match.groups())
    assert raw == pytest.approx(report["raw_bias_pts"], abs=0.005)
    # the scorer's bias shows (theory: +4 points; 60 runs of 200 images: +-1 point) and the correction removes most
    assert 2.5 < raw < 5.5
    assert abs(corrected) < abs(raw)
    assert abs(corrected) < 1.5
    assert 0 <= coverage <= 100 and 0 <= false_fail <= 100
    # sparse and on-the-boundary shares: no corrected interval collapses (60 runs a cell: a loose floor)
    assert sparse == pytest.approx(100 * report["coverage_sparse_min"], abs=0.05) and sparse >= 85
    assert sum(line.startswith("   female ") for line in lines) == 6
    assert any(line.startswith("1. raw male share bias:") and "(theory +4.00)" in line for line in lines)
