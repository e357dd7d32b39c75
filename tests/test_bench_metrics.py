"""The metrics benchmark runs end to end on small sizes, compares both engines and prints its RESULT line."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_metrics")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_small_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--records", "3000", "--n", "500", "--boot", "50", "--old-boot", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("RESULT records=3000 metrics_and_intervals_seconds=")
    assert "n500_B50_intervals_seconds=" in lines[-1]
    assert report["max_diff"] <= 1e-12
