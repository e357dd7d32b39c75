"""The robustness benchmark runs (its input part: the slow process parts are measured by the benchmark itself
and covered by tests/test_generate_concurrency.py and tests/integration/test_never_lose.py)."""

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
        return importlib.import_module("bench_robustness")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_inputs_part(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--mutations", "20", "--skip", "kills,amplification,baselines,faults"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("RESULT inputs=") and " tracebacks=0 hangs=0 " in last
    assert report["inputs"]["silently_accepted"] == []
    assert report["inputs"]["outcomes"]["clean"] > 0 and report["inputs"]["outcomes"]["loaded"] > 0


def test_mutations_are_seeded(bench: ModuleType) -> None:
    import random

    text = "a: 1\nb: [2, 3]\n"
    assert [bench.mutate(text, random.Random(4)) for _ in range(3)] == [
        bench.mutate(text, random.Random(4)) for _ in range(3)
    ]
