"""Scorer audit: what a noisy scorer does to the male share, and whether the card's correction undoes it.

    python benchmarks/bench_scorer_audit.py [--runs 1000] [--n 200] [--audit 300] [--quick]

The synthetic model draws the doctor category 50% male (its default), and the synthetic scorer misreads
the mark at set rates: 10% of women read male, 2% of men read female (``SyntheticAnnotator`` with a
``confusion``; the misreading is decided by the scorer's own ``misread_uniform`` / ``misread_label`` per
seed). No image is rendered: truths come from ``SyntheticGenerator.columns`` on vectorised uniforms, the
readings from the scorer's functions (a parity check against rendered images runs first). Each run draws
its own audit set of ``--audit`` images from the same model (seeds of their own) and its own ``--n``
images; the card is ``metrics.scorer_card.build_card`` of the audit, the metrics ``metrics.result.measure``
with the card, so every number is the package's own path.

Rows (R runs each, default 1,000; rates with 95% Wilson intervals over the runs, biases with +-1.96 SE):

1. raw male-share bias, in points: the mean over runs of (raw share - the true share of the run's own
   images), against the theory ``(1 - p) e_fm - p e_mf`` (+4.0 points at p = 0.5);
2. corrected male-share bias, the same way (target |bias| <= 0.5 points);
3. coverage of the model's share (0.5) by the corrected share's 95% interval (target >= 93%); for
   contrast, the same interval with the card's uncertainty left out (the card taken as exact);
4. false failures of the gate, same model as the baseline (independent images, paired by seed), the card
   applied to both: the shipped policy's fail-level doctor rules (hard bounds by their p-values on the
   corrected scale, regressions by the paired tests on the labels, one Holm family with the other
   categories at p = 1), with and without the card (target <= 1%);
5. the same with the model's parity exactly on the policy's ``max: 0.5`` bound (75% male): without a card
   the scorer's bias (+2 points of parity here) pushes the measured value over the bound; with the card
   the bound is tested on the corrected value (target <= 1%).

6. sparse and on-the-boundary shares: a good scorer (0.5% misread each way, its card from a 300-image
   audit of the balanced model), the model's female share 0.5%, 1% and 3% at n = 60 and 200: coverage of
   the model's male share by the corrected 95% interval (target >= 93% in every cell), beside the raw exact
   interval's. A bootstrap of a group no image was read as collapses to ``[0, 0]``; the corrected share's
   interval also reaches the raw exact interval carried through the card.

Last line: ``RESULT raw_bias_pts=<x> corrected_bias_pts=<x> coverage=<pct> false_fail_with_card=<pct>
coverage_sparse_min=<pct>`` (row 1, row 2, row 3, row 4 with the card, the lowest cell of row 6).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator, misread_label, misread_uniform
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.judge.compare import Comparison, compare_paired
from pytest_t2ibias.judge.family import TestChecks, build_family
from pytest_t2ibias.judge.policy import MetricRule, load_policy
from pytest_t2ibias.judge.stats import wilson_interval
from pytest_t2ibias.judge.verdicts import Check, bound_key, judge_bounds, judge_regressions
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import metric_ids
from pytest_t2ibias.metrics.intervals import bound_p_value
from pytest_t2ibias.metrics.misclassification import correction_draws, misclassification_matrix, percentile_interval
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.metrics.scorer_card import ScorerCard, build_card
from pytest_t2ibias.suites import load_suite

ROOT = Path(__file__).resolve().parents[1]
MODE = "strict"
CATEGORY = "doctor"
ATTRIBUTE = "gender"
E_FM, E_MF = 0.10, 0.02  # women read male, men read female
CONFUSION = {ATTRIBUTE: {"female": {"male": E_FM}, "male": {"female": E_MF}}}
AUDIT_SEEDS = 10_000_000  # audit images use seeds of their own, far from the runs'
ON_BOUND_MALE = 0.75
TARGETS = {"bias_pts": 0.5, "coverage": 0.93, "false_fail": 0.01}
#: Row 6: a good scorer, the model's female shares and the run sizes of the sparse cells.
GOOD_MISREAD = 0.005
GOOD_CONFUSION = {ATTRIBUTE: {"female": {"male": GOOD_MISREAD}, "male": {"female": GOOD_MISREAD}}}
SPARSE_FEMALE = (0.005, 0.01, 0.03)
SPARSE_N = (60, 200)


@dataclass(eq=False)
class Context:
    suite: Any
    policy: Any
    rules: dict[str, dict[str, MetricRule]]
    scorer: SyntheticAnnotator
    models: dict[str, SyntheticGenerator] = field(default_factory=dict)

    @classmethod
    def make(cls) -> Context:
        suite = load_suite("t2i-biasbench")
        policy = load_policy(ROOT / "thresholds" / "t2i-biasbench.yaml", suite)
        rules = {}
        for category in suite.categories:
            reported = set(metric_ids(suite.categories[category], MODE))
            rules[category] = {
                m: r for m, r in policy.rules_for(category).items() if r.severity == "fail" and m in reported
            }
        models = {
            "uniform": SyntheticGenerator(suite),
            "on bound": SyntheticGenerator(
                suite, {"categories": {CATEGORY: {"attribute": {"male": ON_BOUND_MALE, "female": 1 - ON_BOUND_MALE}}}}
            ),
        }
        return cls(suite, policy, rules, SyntheticAnnotator(suite, CONFUSION), models)

    def truth(self, model: SyntheticGenerator, seeds: NDArray[np.int64]) -> tuple[NDArray[np.str_], dict[str, Any]]:
        columns = model.columns(CATEGORY, model.uniforms(CATEGORY, seeds.tolist()))
        return columns.labels[ATTRIBUTE], columns.present

    def read(
        self, truth: NDArray[np.str_], seeds: NDArray[np.int64], scorer: SyntheticAnnotator | None = None
    ) -> NDArray[np.str_]:
        """What the noisy scorer (or ``scorer``) reports: its own misreading, decided per seed."""
        scorer = scorer or self.scorer
        rates = scorer.confusion[ATTRIBUTE]
        out = [
            misread_label(t, rates[t], misread_uniform(int(s), CATEGORY, ATTRIBUTE, scorer.stream)) if t in rates else t
            for t, s in zip(truth.tolist(), seeds.tolist(), strict=True)
        ]
        return np.array(out)

    def card(
        self, model: SyntheticGenerator, run: int, size: int, scorer: SyntheticAnnotator | None = None
    ) -> ScorerCard:
        scorer = scorer or self.scorer
        seeds = AUDIT_SEEDS + run * size + np.arange(size, dtype=np.int64)
        truth, _ = self.truth(model, seeds)
        read = self.read(truth, seeds, scorer)
        return build_card(
            scorer.scorer_id, f"bench-{run}", {ATTRIBUTE: (truth.tolist(), read.tolist())},
            classes={ATTRIBUTE: list(self.suite.attributes[ATTRIBUTE].groups)},
        )  # fmt: skip

    def data(self, model: SyntheticGenerator, seeds: NDArray[np.int64]) -> CategoryData:
        return self.data_and_truth(model, seeds)[0]

    def data_and_truth(
        self, model: SyntheticGenerator, seeds: NDArray[np.int64], scorer: SyntheticAnnotator | None = None
    ) -> tuple[CategoryData, float]:
        """The scorer's columns of the images, and the true male share of these very images."""
        truth, present = self.truth(model, seeds)
        labels = self.read(truth, seeds, scorer)
        data = CategoryData.from_columns(self.suite, CATEGORY, MODE, labels=labels, present=present, seeds=seeds)
        return data, float((truth == "male").mean())

    def measured(self, data: CategoryData, card: ScorerCard | None) -> CategoryResult:
        wanted = sorted(set(self.rules[CATEGORY]) | {"male_share"})
        return measure(self.suite, data, model="synthetic", scorer=self.scorer.scorer_id, metrics=wanted, card=card)


def parity_check(ctx: Context, n: int = 200) -> None:
    """The vectorised path gives the labels the scorer gives on rendered images."""
    model = ctx.models["uniform"]
    seeds = np.arange(n, dtype=np.int64)
    prompt = ctx.suite.categories[CATEGORY].prompts[0]
    images = model.generate([prompt] * n, seeds.tolist())
    records = ctx.scorer.annotate(
        [AnnotationInput(str(s), im, prompt, int(s)) for s, im in zip(seeds, images, strict=True)], CATEGORY
    )
    truth, _ = ctx.truth(model, seeds)
    assert [r.labels[ATTRIBUTE] for r in records] == ctx.read(truth, seeds).tolist(), "vectorised path != scorer"


# -- the gate ---------------------------------------------------------------------------------------------


def _baseline(ctx: Context, result: CategoryResult) -> BaselineRecord:
    return BaselineRecord(
        package_version="bench", suite=ctx.suite.name, suite_hash=ctx.suite.fingerprint(), category=CATEGORY,
        mode=MODE, model="synthetic", scorer=result.scorer, n=result.n, seed=ctx.suite.seed, images_per_prompt=result.n,
        metrics={m: BaselineMetric(value=e.value if isinstance(e.value, float) else None)
                 for m, e in result.metrics.items()},
        labels={},
    )  # fmt: skip


def gate(ctx: Context, base: CategoryData, cand: CategoryData, card: ScorerCard | None) -> list[Check]:
    """The doctor category's fail-level checks, as the plugin judges them (see the module docstring)."""
    rules = ctx.rules[CATEGORY]
    seed = ctx.suite.seed
    base_result, cand_result = ctx.measured(base, card), ctx.measured(cand, card)
    regression = {m: r for m, r in rules.items() if r.regression is not None}
    comparisons: dict[str, Comparison] = {}
    for metric_id in regression:
        new, old = cand_result.value(metric_id), base_result.value(metric_id)
        if isinstance(new, float) and isinstance(old, float):
            try:
                comparisons[metric_id] = compare_paired(base, cand, metric_id, new - old, seed)
            except ValueError:
                continue
    bounds = {}
    measured = cand_result.data if cand_result.data is not None else cand  # with the card: the corrected scale
    for metric_id, rule in rules.items():
        if not isinstance(cand_result.value(metric_id), float):
            continue
        for bound, side in ((rule.max, "max"), (rule.min, "min")):
            if bound is not None:
                bounds[bound_key(metric_id, side)] = bound_p_value(measured, metric_id, bound, side, seed=seed)  # type: ignore[arg-type]
    tests = {
        CATEGORY: TestChecks(
            comparisons=comparisons, bounds=bounds, severities={k: "fail" for k in [*comparisons, *bounds]}
        )
    }  # type: ignore[arg-type]
    for category, other in ctx.rules.items():
        if category == CATEGORY:
            continue
        keys = [m for m, r in other.items() if r.regression is not None]
        keys += [
            bound_key(m, s) for m, r in other.items() for b, s in ((r.max, "max"), (r.min, "min")) if b is not None
        ]
        tests[category] = TestChecks(bounds={k: 1.0 for k in keys}, severities={k: "fail" for k in keys})  # type: ignore[misc]
    fam = build_family(tests, ctx.policy)[CATEGORY]
    checks = judge_bounds(cand_result, rules, fam.adjusted, fam.alpha)
    checks += judge_regressions(
        cand_result, _baseline(ctx, base_result), regression, fam.comparisons, fam.adjusted, fam.alpha,
        evidence=fam.evidence, family_size=fam.size,
    )  # fmt: skip
    return checks


# -- the runs ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    raw: list[float] = field(default_factory=list)
    corrected: list[float] = field(default_factory=list)
    covered: int = 0
    covered_card_exact: int = 0
    widths: list[float] = field(default_factory=list)
    fails: dict[str, int] = field(default_factory=dict)
    runs: int = 0


def simulate(ctx: Context, runs: int, n: int, audit: int, gate_runs: int) -> Tally:
    tally = Tally()
    uniform = ctx.models["uniform"]
    independent = uniform.with_redraw(1.0)
    p = 0.5
    for run in range(runs):
        seeds = run * n + np.arange(n, dtype=np.int64)
        card = ctx.card(uniform, run, audit)
        data, sample_share = ctx.data_and_truth(uniform, seeds)
        result = ctx.measured(data, card)
        assert result.raw_metrics is not None
        raw = result.raw_metrics["male_share"].value
        corrected = result.metrics["male_share"]
        assert isinstance(raw, float) and isinstance(corrected.value, float) and corrected.interval is not None
        # bias against the true share of the run's own images: what the scorer and the correction add,
        # without the sampling noise of the images themselves
        tally.raw.append(raw - sample_share)
        tally.corrected.append(corrected.value - sample_share)
        tally.covered += corrected.interval.contains(p)
        tally.widths.append(corrected.interval.high - corrected.interval.low)
        # contrast: the run resampled, the card taken as exact (a huge pseudo-audit with its estimated rates)
        exact = np.round(misclassification_matrix(card.attributes[ATTRIBUTE].matrix())[1] * 1e7)
        labels = list(data.labels)
        counts = np.array([labels.count(g) for g in ("female", "male")], dtype=np.float64)
        low, high = percentile_interval(correction_draws(counts, exact, 1000, seed=run)[:, 1])
        tally.covered_card_exact += low <= p <= high
        tally.runs += 1
        if run < gate_runs:
            cand = ctx.data(independent, seeds)
            for name, use_card in (("same model, card", card), ("same model, no card", None)):
                tally.fails[name] = tally.fails.get(name, 0) + any(
                    c.verdict == "fail" for c in gate(ctx, data, cand, use_card)
                )
            on_bound = ctx.models["on bound"]
            base_b, cand_b = ctx.data(on_bound, seeds), ctx.data(on_bound.with_redraw(1.0), seeds)
            card_b = ctx.card(on_bound, run, audit)
            for name, use_card in (("on a bound, card", card_b), ("on a bound, no card", None)):
                tally.fails[name] = tally.fails.get(name, 0) + any(
                    c.verdict == "fail" for c in gate(ctx, base_b, cand_b, use_card)
                )
    return tally


@dataclass
class SparseCell:
    female: float
    n: int
    covered: int = 0
    covered_raw: int = 0
    zero_width: int = 0
    runs: int = 0


def simulate_sparse(ctx: Context, runs: int, audit: int) -> list[SparseCell]:
    """Row 6: coverage of the model's male share at sparse female shares, a good scorer, a balanced audit."""
    good = SyntheticAnnotator(ctx.suite, GOOD_CONFUSION)
    balanced = ctx.models["uniform"]
    cells = []
    for female in SPARSE_FEMALE:
        model = SyntheticGenerator(
            ctx.suite, {"categories": {CATEGORY: {"attribute": {"male": 1 - female, "female": female}}}}
        )
        for n in SPARSE_N:
            cell = SparseCell(female, n)
            for run in range(runs):
                seeds = 50_000_000 + run * n + np.arange(n, dtype=np.int64)
                card = ctx.card(balanced, run, audit, good)
                data, _ = ctx.data_and_truth(model, seeds, good)
                result = measure(
                    ctx.suite, data, model="synthetic", scorer=good.scorer_id, metrics=["male_share"], card=card
                )
                assert result.raw_metrics is not None
                corrected, raw = result.metrics["male_share"].interval, result.raw_metrics["male_share"].interval
                assert corrected is not None and raw is not None
                cell.covered += corrected.contains(1 - female)
                cell.covered_raw += raw.contains(1 - female)
                cell.zero_width += corrected.high - corrected.low == 0
                cell.runs += 1
            cells.append(cell)
    return cells


def _bias(values: Sequence[float]) -> tuple[float, float]:
    x = 100 * np.asarray(values)
    return float(x.mean()), float(1.96 * x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


def _rate(k: int, n: int) -> str:
    iv = wilson_interval(k, n)
    return f"{100 * k / n:5.1f}% [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per row (default 1000)")
    parser.add_argument("--n", type=int, default=200, help="images per run (default 200)")
    parser.add_argument("--audit", type=int, default=300, help="audit images per card (default 300)")
    parser.add_argument("--gate-runs", type=int, default=None, help="runs of rows 4-5 (default: --runs)")
    parser.add_argument("--sparse-runs", type=int, default=None, help="runs per cell of row 6 (default: --runs)")
    parser.add_argument("--quick", action="store_true", help="60 runs, 10 of them gated (a smoke test)")
    args = parser.parse_args(argv)
    runs = 60 if args.quick else args.runs
    gate_runs = min(runs, 10 if args.quick else (args.gate_runs or runs))
    started = time.perf_counter()
    ctx = Context.make()
    parity_check(ctx)
    print(f"scorer: {ctx.scorer.scorer_id} (women read male {E_FM:.0%}, men read female {E_MF:.0%}); parity check ok")
    print(f"runs {runs} (gate rows: {gate_runs}), {args.n} images per run, {args.audit}-image audit per run")
    tally = simulate(ctx, runs, args.n, args.audit, gate_runs)
    p = 0.5
    theory = 100 * ((1 - p) * E_FM - p * E_MF)
    raw, raw_se = _bias(tally.raw)
    cor, cor_se = _bias(tally.corrected)
    coverage = tally.covered / tally.runs
    print(f"1. raw male share bias:        {raw:+.2f} +- {raw_se:.2f} pts (theory {theory:+.2f})")
    ok = "ok" if abs(cor) <= TARGETS["bias_pts"] else "MISSED"
    print(f"2. corrected male share bias:  {cor:+.2f} +- {cor_se:.2f} pts (target |bias| <= 0.5: {ok})")
    ok = "ok" if coverage >= TARGETS["coverage"] else "MISSED"
    print(
        f"3. 95% interval coverage:      {_rate(tally.covered, tally.runs)} (target >= 93%: {ok}); mean width "
        f"{100 * np.mean(tally.widths):.1f} pts; card taken as exact: {_rate(tally.covered_card_exact, tally.runs)}"
    )
    for row, name in (
        ("4.", "same model, card"),
        ("  ", "same model, no card"),
        ("5.", "on a bound, card"),
        ("  ", "on a bound, no card"),
    ):
        print(f"{row} false failures, {name + ':':22s} {_rate(tally.fails.get(name, 0), gate_runs)}")
    false_fail = tally.fails.get("same model, card", 0) / gate_runs
    sparse_runs = runs if args.sparse_runs is None else args.sparse_runs
    cells = simulate_sparse(ctx, sparse_runs, args.audit)
    print(
        f"6. sparse shares, a good scorer ({GOOD_MISREAD:.1%} misread each way, {args.audit}-image balanced audit), "
        f"{sparse_runs} runs per cell: coverage of the male share (target >= 93%)"
    )
    for cell in cells:
        ok = "ok" if cell.covered / cell.runs >= TARGETS["coverage"] else "MISSED"
        print(
            f"   female {cell.female:5.1%}  n={cell.n:<4d} corrected {_rate(cell.covered, cell.runs)} ({ok}); "
            f"raw exact {_rate(cell.covered_raw, cell.runs)}; zero-width corrected intervals {cell.zero_width}"
        )
    sparse_min = min(cell.covered / cell.runs for cell in cells)
    print(f"done in {time.perf_counter() - started:.0f} s")
    print(
        f"RESULT raw_bias_pts={raw:.2f} corrected_bias_pts={cor:.2f} coverage={100 * coverage:.1f} "
        f"false_fail_with_card={100 * false_fail:.1f} coverage_sparse_min={100 * sparse_min:.1f}"
    )
    return {
        "raw_bias_pts": raw,
        "corrected_bias_pts": cor,
        "coverage": coverage,
        "false_fail_with_card": false_fail,
        "coverage_sparse_min": sparse_min,
    }


if __name__ == "__main__":
    main()
