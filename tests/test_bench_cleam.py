"""The CLEAM benchmark (``benchmarks/bench_cleam.py``) runs end to end on a few runs: its last line is the
RESULT line in the exact format, the naive error is what the classifier's accuracies imply (about 4.35% of
p*_0), the card's correction removes nearly all of it, and the constants reproduce the paper's numbers."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT = re.compile(
    r"RESULT fd_error_naive_pct=(\d+\.\d\d) fd_error_ours_pct=(\d+\.\d\d) "
    r"fd_error_cleam_published_pct=0\.62 coverage_ours=(\d+\.\d)"
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_cleam")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_small_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--runs", "20", "--seed", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    match = RESULT.fullmatch(lines[-1])
    assert match is not None, lines[-1]
    naive, ours, coverage = (float(x) for x in match.groups())
    assert naive == pytest.approx(report["fd_error_naive_pct"], abs=0.005)
    assert ours == pytest.approx(report["fd_error_ours_pct"], abs=0.005)
    assert coverage == pytest.approx(100 * report["coverage_ours"], abs=0.05)
    # expected naive share 0.642 * 0.947 + 0.358 * 0.017 = 0.614: 4.35% under p*_0 (20 runs: +-0.3)
    assert 3.5 < naive < 5.2
    # the correction leaves sampling noise only (about 0.4%), far below the naive error
    assert ours < naive / 4
    assert ours < 1.0
    # for two classes the maximum-likelihood correction inside the simplex is CLEAM's formula: same estimate
    assert report["fd_error_cleam_simulated_pct"] == pytest.approx(report["fd_error_ours_pct"], abs=1e-6)
    # the FD proper: the naive one is off by about a fifth of the true FD, ours by a few percent
    assert report["fd_rel_error_naive_pct"] > 15
    assert report["fd_rel_error_ours_pct"] < 5
    assert 0 <= coverage <= 100 and 0.0 <= report["coverage_ours_p0"] <= 1.0
    assert any(line.startswith("ours (scorer card), simulated") for line in lines)


def test_constants_reproduce_the_paper(bench: ModuleType) -> None:
    """CLEAM's formula with the authors' alphas turns the Baseline the published 4.98% implies into the
    published CLEAM estimate (0.638, 0.62%), and the shifted alpha makes the naive mean that Baseline."""
    p, a0, a1 = bench.P_STAR_FEMALE, bench.ALPHA_FEMALE, bench.ALPHA_MALE
    baseline = p * (1 - bench.BASELINE_PUBLISHED_PCT / 100)
    assert round(baseline, 3) == 0.610
    corrected = (baseline - (1 - a1)) / (a0 + a1 - 1)
    assert round(corrected, 3) == 0.638 or abs(corrected - 0.638) < 0.001
    assert 100 * abs(p - 0.638) / p == pytest.approx(bench.CLEAM_PUBLISHED_PCT, abs=0.005)
    shifted = p * bench.ALPHA_FEMALE_SHIFTED + (1 - p) * (1 - a1)
    assert shifted == pytest.approx(baseline, abs=1e-12)
    assert bench.FD_TRUE == pytest.approx(math.sqrt(2) * 0.142, abs=1e-12)
