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
    argv = ["--records", "3000", "--n", "500", "--boot", "50", "--old-boot", "2", "--replay-rows", "300"]
    report = bench.main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("RESULT records=3000 metrics_and_intervals_seconds=")
    assert "n500_B50_intervals_seconds=" in lines[-1] and " category_n2000_seconds=" in lines[-1]
    assert " replay_rows300_seconds=" in lines[-1] and " replay_rows300_peak_mb=" in lines[-1]
    assert report["max_diff"] <= 1e-12
    assert report["replay_peak_mb"] > 0


def test_generated_captions_are_distinct_and_bucketed(bench: ModuleType, tmp_path: Path) -> None:
    from pytest_t2ibias.replay import bucket_rows, read_caption_csv
    from pytest_t2ibias.suites import load_suite

    path = tmp_path / "captions.csv"
    bench.write_captions(path, 90)
    table = read_caption_csv(path)
    assert len(table.rows) == 90 and table.bad_rows == 0 and table.duplicates == 0
    assert len({row.caption for row in table.rows}) == 90
    buckets, unmatched = bucket_rows(table.rows, load_suite("t2i-biasbench"))
    assert sum(len(rows) for rows in buckets.values()) + len(unmatched) == 90 and len(unmatched) < 90
