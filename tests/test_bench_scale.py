"""The scale benchmark's parts on small sizes: concurrent processes generate each image once, the overlap
ratio is measured, and the RESULT line has the exact form the issue asks for."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_scale")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_generated_counts_are_read_from_the_generate_summary(bench: ModuleType) -> None:
    out = "8 images of suite 't2i-biasbench' by tiny:abc in cache: 5 new, 3 cached\n"
    assert bench._generated(out) == 5
    assert bench._generated(out + "8 generated (the new images and the cached ones in their blocks)\n") == 8


def test_concurrent_cli_processes_generate_each_image_once(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.amplification_processes(tmp_path / "work", per_prompt=4, count=2) <= 1.05


def test_overlap_ratio_is_measured(bench: ModuleType) -> None:
    ratio, on, off = bench.overlap_ratio(4, 1)
    assert on > 0 and off > 0 and ratio == pytest.approx(on / off)


def test_the_result_line(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last line, from the measured parts (the slow subprocess runs replaced by fixed figures)."""
    # full size: 1 rank 10 s, 2 ranks 6 s; a quarter of it: 4 s and 3 s. Throughput from the seconds the
    # extra images added: 6 s vs 3 s, so 2.00x (the wall-clock ratio would say 1.67x).
    # (the quick run: one repeat, 1 rank at both sizes, then 2 ranks)
    outputs = iter([(10.0, "same"), (4.0, "same"), (6.0, "same"), (3.0, "same")])
    monkeypatch.setattr(bench, "_evaluate", lambda ranks, cwd, per_prompt: next(outputs))
    monkeypatch.setattr(bench, "_files", lambda root: {"a.png": b"x"})
    monkeypatch.setattr(bench, "amplification_torchrun", lambda work, n: 1.0)
    monkeypatch.setattr(bench, "amplification_xdist", lambda work, n: 1.25)
    monkeypatch.setattr(bench, "amplification_processes", lambda work, n: 1.0)
    monkeypatch.setattr(bench, "overlap_ratio", lambda n, rounds: (0.9, 9.0, 10.0))
    bench.main(["--quick"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "RESULT ranks2_identical=yes amplification_max=1.250 speedup_2ranks=2.00 overlap_ratio=0.900"
    assert re.fullmatch(
        r"RESULT ranks2_identical=(yes|no) amplification_max=\d+\.\d+ speedup_2ranks=\d+\.\d+ overlap_ratio=\d+\.\d+",
        last,
    )
