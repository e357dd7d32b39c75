"""The statistical-validity benchmark judges simulated runs with the package's own functions, and a tiny
run completes.

The benchmark (``benchmarks/bench_stat_validity.py``) calls the engine on columns drawn by the synthetic
model; these tests check that this gives exactly what the plugin's path gives (records -> ``measure`` ->
``gather`` -> ``build_family`` -> verdicts), and run it end to end on a few small runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineRecord
from pytest_t2ibias.judge.family import build_family, gather
from pytest_t2ibias.judge.verdicts import judge_bounds, judge_regressions
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.records import ImageRecord

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(stat_bench: ModuleType) -> ModuleType:
    return stat_bench


def _records(generator: SyntheticGenerator, category: str, uniforms: np.ndarray, seeds: list[int]) -> list[ImageRecord]:
    columns = generator.columns(category, uniforms)
    spec = generator.suite.categories[category]
    terms = {name: spec.term_list(name) for name in columns.present}
    return [
        ImageRecord(
            image_id=f"{category}-{i}",
            category=category,
            labels={a: str(v[i]) for a, v in columns.labels.items()},
            present={
                name: [t for t, hit in zip(listed, columns.present[name][i], strict=True) if hit]
                for name, listed in terms.items()
            },
            seed=seed,
        )
        for i, seed in enumerate(seeds)
    ]


BIASED = {"male": 0.9, "female": 0.1}
NO_ONE = {"male": 0.0, "female": 0.0, "unknown": 1.0}  # issue 24: a model that draws no recognisable person


@pytest.mark.parametrize(
    ("category", "pairing", "doctors"),
    [("doctor", "redraw", BIASED), ("nature", "independent", BIASED), ("beauty", "tied", BIASED),
     ("doctor", "redraw", NO_ONE)],
)  # fmt: skip
def test_the_benchmark_judges_what_the_plugin_judges(
    bench: ModuleType, category: str, pairing: str, doctors: dict[str, float]
) -> None:
    ctx = bench.Context.make()
    uniform = ctx.generator("skewed")
    shifted = uniform.with_probabilities("doctor", doctors)
    scenario = bench.Scenario("test", "skewed", pairing, 0.2)
    base_u, cand_u, paired = bench.draw_pair(np.random.default_rng(3), 60, ctx.width(category), scenario)
    assert paired
    side = bench.Side(category, ctx.data(category, shifted, cand_u), ctx.data(category, uniform, base_u), True)
    ours = bench.judge_run(ctx, [side])

    # the plugin's path: records of the same images, measured, gathered against the stored baseline
    suite, seeds = ctx.suite, list(range(100, 160))
    base_records = _records(uniform, category, base_u, seeds)
    cand_records = _records(shifted, category, cand_u, seeds)

    def result(records: list[ImageRecord]):  # type: ignore[no-untyped-def]
        data = category_data(suite, category, records, "strict")
        return measure(suite, data, model="synthetic", scorer="synthetic", records=records, images_per_prompt=60,
                       metrics=list(ctx.rules[category]))  # fmt: skip

    cand, stored = result(cand_records), BaselineRecord.from_result(result(base_records))
    rules = ctx.rules[category]
    tests = {c: bench.TestChecks() for c in suite.categories}
    for other in suite.categories:
        keys = ctx.family_keys(other)
        tests[other] = bench.TestChecks(bounds={k: 1.0 for k in keys}, severities={k: "fail" for k in keys})
    tests[category] = gather(suite, cand, stored, rules, ctx.policy)
    family = build_family(tests, ctx.policy)[category]
    regression = {m: r for m, r in rules.items() if r.regression is not None}
    plugin = judge_bounds(cand, rules, family.adjusted, family.alpha) + judge_regressions(
        cand, stored, regression, family.comparisons, family.adjusted, family.alpha,
        evidence=family.evidence, family_size=family.size,
    )  # fmt: skip

    def key(checks):  # type: ignore[no-untyped-def]
        # the benchmark leaves intervals out: within a bound they only tell pass from warn (a straddle)
        return sorted((c.metric, c.kind, c.threshold, c.verdict if c.kind != "bound" else c.verdict == "fail",
                       c.p_value, c.delta) for c in checks)  # fmt: skip

    assert key(ours) == key(plugin)
    assert {c.kind for c in plugin} >= {"regression"}
    if doctors is NO_ONE:  # the lost gender metrics fail in both, not only the unknown_rate rule
        assert any(c.metric == "male_share" and c.verdict == "fail" and "collapsed" in c.note for c in ours)


def test_smoke_run(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--quick", "--runs", "3", "--workers", "1", "--ns", "15", "--grid", "150"]
    report = bench.main(argv)
    out = capsys.readouterr().out
    for row in ("1. false failures", "2. power", "3. a real 15-point regression", "4. ratchet", "5. interval coverage",
                "6. images for 90% power", "7. re-approving an unchanged model", "8. a regression of exactly 1.5x",
                "9. doctors drawn unrecognisable"):  # fmt: skip
        assert row in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"RESULT false_fail_max=[\d.]+ power15_n200_redraw20=[\d.]+ power15_n200_independent=[\d.]+ "
        r"n15_regression_pass=[\d.]+ ratchet_caught=[\d.]+ coverage_min=[\d.]+ reapproval_refused_max=[\d.]+ "
        r"pass_at_1p5x_max=[\d.]+ all_unknown_fails=[\d.]+ advice_ratio_max=[\d.]+",
        last,
    ), last
    assert report["runs"] == 3 and report["ns"] == [15]
    assert set(report["false_failures"]) == {s.name for s in bench.FALSE_FAIL}
    assert all(0.0 <= r <= 1.0 for cells in report["false_failures"].values() for r in cells.values())
    assert 0.0 <= report["coverage_min"] <= 1.0


def test_a_checkpointed_run_resumes_with_the_same_tables(
    bench: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A 1,000-run does not fit in one session: with --checkpoint it is run in pieces (a run cut short, then the
    same command again), and the tables are those of one go."""
    checkpoint = tmp_path / "run.jsonl"
    argv = ["--quick", "--runs", "2", "--workers", "1", "--ns", "15", "--grid", "150", "--checkpoint", str(checkpoint)]
    whole = bench.main(argv)
    first = capsys.readouterr().out
    lines = checkpoint.read_text().splitlines()
    # stopped half-way; a line that is not a job's (a file edited by hand) is ignored
    checkpoint.write_text("\n".join([*lines[: len(lines) // 2], "not json"]) + "\n")
    resumed = bench.main(argv)
    captured = capsys.readouterr()
    assert f"{len(lines) // 2} of {len(lines)} jobs already done" in captured.err
    assert len(checkpoint.read_text().splitlines()) == len(lines) + 1
    assert {**resumed, "elapsed_s": 0} == {**whole, "elapsed_s": 0}
    drop = re.compile(r"^elapsed .*$", re.MULTILINE)
    assert drop.sub("", captured.out) == drop.sub("", first)
