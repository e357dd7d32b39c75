"""The statistical-validity benchmark judges simulated runs with the package's own functions, and a tiny
run completes.

The benchmark (``benchmarks/bench_stat_validity.py``) calls the engine on columns drawn by the synthetic
model; these tests check that this gives exactly what the plugin's path gives (records -> ``measure`` ->
``comparisons_for``), and run it end to end on a few small runs.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineRecord
from pytest_t2ibias.judge.compare import comparisons_for
from pytest_t2ibias.judge.policy import load_policy
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_stat_validity")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def ctx(bench: ModuleType):  # type: ignore[no-untyped-def]
    suite = load_suite("t2i-biasbench")
    return bench.Context.make(suite, load_policy(ROOT / "thresholds" / "t2i-biasbench.yaml", suite), None)


def _records(generator: SyntheticGenerator, category: str, seeds: list[int]) -> list[ImageRecord]:
    out = []
    for i, seed in enumerate(seeds):
        truth = generator.draw(category, seed)
        out.append(ImageRecord(image_id=f"{category}-{i}", category=category, labels=truth.labels,
                               present=truth.present, seed=seed))  # fmt: skip
    return out


@pytest.mark.parametrize("category", ["doctor", "nature", "beauty"])
def test_the_benchmark_judges_what_the_plugin_judges(bench: ModuleType, ctx, category: str) -> None:  # type: ignore[no-untyped-def]
    uniform = SyntheticGenerator(ctx.suite, bench.SKEWED)
    shifted = uniform.with_probabilities("doctor", {"male": 0.85, "female": 0.15})
    seeds = bench.seeds_for(bench.stream("test"), category, 80)
    base_u = uniform.uniforms(category, seeds)
    e = ctx.evaluate(category, ctx.data(category, uniform, base_u), ctx.data(category, shifted, base_u))

    # the plugin's path: records from the synthetic model's ground truth, measured and compared
    base_records, cand_records = _records(uniform, category, seeds), _records(shifted, category, seeds)
    suite = ctx.suite
    result = measure(suite, category_data(suite, category, cand_records, "strict"), model="synthetic",
                     scorer="synthetic", records=cand_records, images_per_prompt=80)  # fmt: skip
    base = measure(suite, category_data(suite, category, base_records, "strict"), model="synthetic",
                   scorer="synthetic", records=base_records, images_per_prompt=80)  # fmt: skip
    rules = ctx.rules[category]
    for metric_id in rules:
        assert e.ours.metrics[metric_id] == result.metrics[metric_id], metric_id
    plugin = comparisons_for(suite, result, BaselineRecord.from_result(base), rules)
    assert plugin.keys() == e.comparisons.keys()
    for metric_id, comparison in plugin.items():
        assert comparison == e.comparisons[metric_id], metric_id
    assert {c.method for c in plugin.values()} >= {"paired bootstrap"}


def test_smoke_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--runs", "5", "--n", "40", "--power-n", "40", "--grid", "40,80", "--boot", "100"]
    report = bench.main(argv)
    out = capsys.readouterr().out
    for row in ("1. false failures", "skewed", "2. power", "3. images/category", "4. within the margin", "elapsed"):
        assert row in out
    assert report["runs"] == 5 and report["boot"] == 100 and report["n"] == 40
    for key in ("false_failure_uniform", "false_failure_skewed", "power", "within_margin"):
        assert report[key]["runs"] == 5
        assert 0.0 <= report[key]["ours"] <= 1.0 and 0.0 <= report[key]["naive"] <= 1.0
    assert set(report["power_curve"]) == {40, 80}
    assert set(report["images_needed"]) == {"ours", "naive"}
    assert report["analytic_images"]["alpha"] == 144  # images_for_power(0.10, 0.10, 0.01), its doctest
    assert math.isfinite(report["elapsed_s"])
