"""The upper bound of a worsening (``Comparison.upper``, what a pass needs) is a one-sided 95 % bound.

A folded metric (parity, "closer to zero") bounds its worsening by the smaller of two bounds (the size of
the change, the runs' posterior bounds apart): each is a 97.5 % bound, so their minimum is a 95 % one (the
minimum of two 95 % bounds could miss up to 10 %: a 1.5x worsening of parity passed 10 % of runs). A share
compared by McNemar gets the score bound of a paired difference, whose spread is taken at the bound itself.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pytest_t2ibias.judge import compare
from pytest_t2ibias.judge.stats import paired_difference_upper, swap_permutation_test
from pytest_t2ibias.metrics.counts import pooled_types
from pytest_t2ibias.metrics.registry import metric_def, reads_of

ROOT = Path(__file__).resolve().parents[1]
Z95 = 1.6448536269514722


@pytest.fixture(scope="module")
def bench(stat_bench: ModuleType) -> ModuleType:
    return stat_bench


def test_the_score_bound_of_a_paired_difference_covers_the_truth() -> None:
    rng = np.random.default_rng(3)
    n, gain, loss = 200, 0.20, 0.05  # true change +0.15
    draws = rng.multinomial(n, [gain, loss, 1 - gain - loss], size=2000)
    covered = [paired_difference_upper(int(g), int(lo), n, Z95) >= gain - loss for g, lo, _ in draws]
    assert np.mean(covered) >= 0.945
    # every pair turned yes: the bound is 1; none changed: a small positive bound, not 0
    assert paired_difference_upper(n, 0, n, Z95) == 1.0
    assert 0 < paired_difference_upper(0, 0, n, Z95) < 0.02
    # the mirror image: the bound of the other way
    assert paired_difference_upper(10, 30, n, Z95) < 0


def test_the_folded_bound_is_the_smaller_of_two_975_bounds(bench: ModuleType) -> None:
    ctx = bench.Context.make()
    rng = bench.rng_for(11, "fold")
    scenario = bench.Scenario("redraw 20%", "uniform", "redraw", 0.2)
    base_u, cand_u, _ = bench.draw_pair(rng, 200, ctx.width("doctor"), scenario)
    base = ctx.data("doctor", ctx.generator("uniform"), base_u)
    cand = ctx.data("doctor", bench.shifted(ctx, 0.55), cand_u)
    metric = "parity_difference"
    definition = metric_def(metric, base.spec)
    assert definition is not None
    delta = compare._value(definition, cand) - compare._value(definition, base)
    got = compare.compare_paired(base, cand, metric, delta)
    pooled = pooled_types(base, cand, reads_of(definition, base.spec), paired=True)
    fold = compare._fold(base, cand, metric, definition, pooled, 0, level=0.975)
    loose = compare._fold(base, cand, metric, definition, pooled, 0, level=0.95)
    assert fold is not None and loose is not None  # parity near 0: the fold is in reach
    assert pooled.pairs is not None
    spread = swap_permutation_test(fold.contrast, pooled.pairs, len(pooled.table.counts), 0, stream=f"fold:{metric}").se
    z975 = 1.959963984540054
    assert got.upper is not None
    assert got.upper >= min(fold.change + z975 * spread, fold.apart) - 1e-12
    assert got.upper >= min(fold.change + Z95 * spread, loose.apart) - 1e-12
    assert fold.apart > loose.apart  # the 97.5 % posterior bound lies further out


def test_a_parity_worsening_of_1p5x_the_allowance_rarely_passes(bench: ModuleType) -> None:
    """Doctor 50 % -> 57.5 % male (parity 1.5x its allowance 0.1 worse), n = 200, 20 % re-drawn: a pass
    needs the 95 % bound within 1.5x the allowance, so about 5 % of runs at most pass (these 100 seeded
    runs: 8 before the split, 1 after)."""
    metric, male = "parity_difference", 0.575
    ctx = bench.Context.make()
    scenario = bench.Scenario("redraw 20%", "uniform", "redraw", 0.2)
    base_gen, cand_gen = ctx.generator("uniform"), bench.shifted(ctx, male)
    passes = 0
    runs = 100
    for run in range(runs):
        rng = bench.rng_for(5, "fold-1p5x", run)
        base_u, cand_u, paired = bench.draw_pair(rng, 200, ctx.width("doctor"), scenario)
        side = bench.Side("doctor", ctx.data("doctor", cand_gen, cand_u), ctx.data("doctor", base_gen, base_u), paired)
        verdicts = {c.metric: c.verdict for c in bench.judge_run(ctx, [side]) if c.kind == "regression"}
        passes += verdicts.get(metric) == "pass"
    assert passes <= 5, f"{metric} at 1.5x the allowance passed {passes} of {runs} runs"


def test_an_unchanged_model_still_passes_parity_mostly(bench: ModuleType) -> None:
    """The wider bound costs some passes of an unchanged model (20 % re-drawn, n = 200), not most."""
    ctx = bench.Context.make()
    scenario = bench.Scenario("redraw 20%", "uniform", "redraw", 0.2)
    generator = ctx.generator("uniform")
    passes = 0
    for run in range(40):
        rng = bench.rng_for(5, "fold-null", run)
        base_u, cand_u, paired = bench.draw_pair(rng, 200, ctx.width("doctor"), scenario)
        side = bench.Side(
            "doctor", ctx.data("doctor", generator, cand_u), ctx.data("doctor", generator, base_u), paired
        )
        verdicts = {c.metric: c.verdict for c in bench.judge_run(ctx, [side]) if c.kind == "regression"}
        passes += verdicts.get("parity_difference") == "pass"
    assert passes >= 28  # these 40 seeded runs: 36 (40 before the split)
