"""Statistical validity of the gate: false failures, power and images needed, our rule against the naive one.

    python benchmarks/bench_stat_validity.py [--runs 500] [--boot 1000] [--quick]

Simulated on the synthetic model (labels and present terms drawn by ``SyntheticGenerator.columns``, no image
rendered), with the shipped policy ``thresholds/t2i-biasbench.yaml`` (its fail-level rules only: warn-level
rules never fail a build) in strict mode. A run fails when any fail-level check of any simulated category
fails. Side by side:

* **ours**: the package's verdict rule, computed by the package itself: ``metrics.result.measure`` (values
  and intervals), ``judge.compare.compare_paired`` (exact McNemar for per-image outcomes, the paired
  bootstrap otherwise), ``judge.family.build_family`` (Holm across every fail-level comparison of the run)
  and ``judge_bounds`` / ``judge_regressions``. Nothing here re-implements a metric or a test: the engine
  is vectorised, so the benchmark calls it on columns (``CategoryData.from_columns``) instead of records.
* **naive**: the point estimate beyond a bound, or worse than the baseline by more than the tolerance.

Rows: (1) false-failure rate when baseline and candidate are two models with the same distribution (the
candidate's images drawn from an independent seed stream, paired with the baseline's seeds), the whole
suite at its 100 images per prompt, for the default synthetic model (uniform over the declared groups)
and for a skewed, paper-like model whose population values sit inside the bounds (target <= 1% for
ours); (2) power against doctor male 0.50 -> 0.65 at 200 images per category (the synthetic model's
coupling flips only the seeds whose uniform falls in the shifted band; target >= 90%); (3) the images per
category our rule needs for 90% power at 0.50 -> 0.60, by simulation over a grid of n (each run's images
are the first n of one sequence, as the seed plan makes them; the search stops two grid points after both
rules reach 90%), beside the analytic ``images_for_power``; (4) a change within the allowed regression
(0.50 -> 0.54: parity +0.08 of the 0.10 allowed) for reference. Rows 3 and 4 simulate the doctor category
only: the unchanged categories' images are identical in baseline and candidate, so their comparisons enter
Holm with p = 1 (row 2, simulated in full, asserts it).
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.generate.seeds import image_seed
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.judge.compare import N_PAIRED_BOOT, Comparison, compare_paired, with_margin
from pytest_t2ibias.judge.family import build_family
from pytest_t2ibias.judge.policy import MetricRule, Policy, load_policy
from pytest_t2ibias.judge.stats import Interval, images_for_power, wilson_interval
from pytest_t2ibias.judge.verdicts import Check, judge_bounds, judge_regressions, worsening
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import compute_data, metric_ids
from pytest_t2ibias.metrics.intervals import N_BOOT, MetricEstimate
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

ROOT = Path(__file__).resolve().parents[1]
MODE = "strict"
TARGET_POWER = 0.9

#: A skewed, paper-like synthetic model (doctors mostly male, beauty mostly white, a few species and insects,
#: stereotype terms more frequent than diverse ones) whose population values sit inside every hard bound of
#: the shipped policy, some of them close (doctor parity 0.40 of 0.5, nature composite ~0.50 of 0.55).
SKEWED: dict[str, Any] = {
    "presence": 0.5,
    "categories": {
        "beauty": {
            "attribute": {
                "white": 0.50,
                "asian": 0.15,
                "black": 0.10,
                "latine": 0.10,
                "mixed": 0.05,
                "medium": 0.05,
                "unknown": 0.05,
            },
            "presence": {"cas_stereotype": 0.10, "cas_diverse": 0.05},
        },
        "doctor": {"attribute": {"male": 0.70, "female": 0.30}},
        "culture": {
            "attribute": {"fair": 0.60, "medium": 0.30, "dark": 0.10},
            "presence": {"cas_stereotype": 0.10, "cas_diverse": 0.05},
        },
        "animal": {
            "attribute": {"dog": 0.45, "cat": 0.25, "monkey": 0.10, "rabbit": 0.10, "parrot": 0.05, "squirrel": 0.05}
        },
        "nature": {
            "attribute": {"butterfly": 0.50, "bee": 0.30, "ladybug": 0.10, "beetle": 0.10},
            "presence": {"cas_stereotype": 0.30, "cas_diverse": 0.10},
        },
    },
}


# -- one category of one run, judged by the package ---------------------------------------------------------


def fail_rules(policy: Policy, suite: Suite, category: str) -> dict[str, MetricRule]:
    """The category's fail-level rules over metrics it reports (warn-level rules never fail a build)."""
    reported = set(metric_ids(suite.categories[category], MODE))
    return {m: r for m, r in policy.rules_for(category).items() if r.severity == "fail" and m in reported}


@dataclass
class CategoryEval:
    """One category of one run, ready for the judge: both rules' results, the baseline, the comparisons."""

    category: str
    ours: CategoryResult
    naive: CategoryResult
    baseline: BaselineRecord
    comparisons: dict[str, Comparison]
    deltas: dict[str, float]


@dataclass
class Context:
    suite: Suite
    policy: Policy
    rules: dict[str, dict[str, MetricRule]]
    n_pair_boot: int
    n_iv_boot: int

    @classmethod
    def make(cls, suite: Suite, policy: Policy, n_boot: int | None) -> Context:
        rules = {c: fail_rules(policy, suite, c) for c in suite.categories}
        return cls(suite, policy, rules, n_boot or N_PAIRED_BOOT, n_boot or N_BOOT)

    def family_size(self, category: str) -> int:
        return sum(1 for r in self.rules[category].values() if r.regression is not None)

    def data(self, category: str, generator: SyntheticGenerator, uniforms: NDArray[np.float64]) -> CategoryData:
        """One side's images as the engine's columns (labels of the attribute under test, term presence)."""
        columns = generator.columns(category, uniforms)
        attribute = self.suite.categories[category].attribute
        assert attribute is not None
        return CategoryData.from_columns(
            self.suite, category, MODE, labels=columns.labels[attribute], present=columns.present
        )

    def evaluate(self, category: str, base: CategoryData, cand: CategoryData) -> CategoryEval:
        """The candidate's values and intervals, the baseline's values, and the paired comparisons of the
        gated metrics: every number from the package's own functions."""
        rules, seed, n = self.rules[category], self.suite.seed, cand.n
        ours = measure(
            self.suite,
            cand,
            model="synthetic",
            scorer="synthetic",
            seed=seed,
            images_per_prompt=n,
            n_boot=self.n_iv_boot,
            metrics=list(rules),
        )
        base_values = compute_data(base, only=list(rules)).metrics
        naive = CategoryResult(
            category=category,
            suite=self.suite.name,
            suite_hash=ours.suite_hash,
            mode=MODE,
            model="synthetic",
            scorer="synthetic",
            n=n,
            metrics={m: MetricEstimate(e.value, None, e.reason) for m, e in ours.metrics.items()},
            seed=seed,
            images_per_prompt=n,
        )
        comparisons: dict[str, Comparison] = {}
        deltas: dict[str, float] = {}
        for metric_id, rule in rules.items():
            value_c, value_b = ours.metrics[metric_id].value, base_values[metric_id]
            if rule.regression is None or not isinstance(value_c, float) or not isinstance(value_b, float):
                continue  # compare_metric raises on a missing value; judge_regressions reports it
            deltas[metric_id] = value_c - value_b
            try:
                comparison = compare_paired(base, cand, metric_id, value_c - value_b, seed, n_boot=self.n_pair_boot)
            except ValueError:
                continue  # the paired bootstrap is unavailable: no comparison, the judge says inconclusive
            if self.policy.margin_test:  # as judge.compare.comparisons_for applies it
                worse_by = worsening(metric_id, MODE, value_c, value_b)
                comparison = with_margin(comparison, worse_by, rule.regression.allowed(value_b))
            comparisons[metric_id] = comparison
        baseline = BaselineRecord(
            package_version="bench",
            suite=self.suite.name,
            suite_hash=ours.suite_hash,
            category=category,
            mode=MODE,
            model="synthetic",
            scorer="synthetic",
            n=n,
            seed=seed,
            images_per_prompt=n,
            metrics={m: BaselineMetric(value=v if isinstance(v, float) else None) for m, v in base_values.items()},
            labels={},
        )
        return CategoryEval(category, ours, naive, baseline, comparisons, deltas)

    def judge(self, evals: Sequence[CategoryEval], extra_p: Sequence[float] = ()) -> tuple[list[Check], list[Check]]:
        """Both rules' checks of one run. Ours: the run's family (``extra_p``: the fail-level comparisons of
        categories not simulated); naive: no test, the point change decides."""
        comparisons: dict[str, dict[str, Comparison]] = {e.category: e.comparisons for e in evals}
        rules = {e.category: self.rules[e.category] for e in evals}
        if extra_p:
            comparisons["not simulated"] = {
                f"m{i}": Comparison(metric=f"m{i}", delta=0.0, p_value=p, method="mcnemar", n_pairs=0)
                for i, p in enumerate(extra_p)
            }
            rules["not simulated"] = {f"m{i}": MetricRule(max=1.0) for i in range(len(extra_p))}
        family = build_family(comparisons, rules, self.policy)
        ours: list[Check] = []
        naive: list[Check] = []
        for e in evals:
            ruled = self.rules[e.category]
            reg = {m: r for m, r in ruled.items() if r.regression is not None}
            fam = family[e.category]
            ours += judge_bounds(e.ours, ruled)
            ours += judge_regressions(e.ours, e.baseline, reg, fam.comparisons, fam.adjusted, fam.alpha)
            point = {
                m: Comparison(metric=m, delta=d, p_value=0.0, method="point", n_pairs=e.ours.n)
                for m, d in e.deltas.items()
            }
            naive += judge_bounds(e.naive, ruled)
            naive += judge_regressions(e.naive, e.baseline, reg, point, dict.fromkeys(point, 0.0), fam.alpha)
        return ours, naive


def failed(checks: Sequence[Check]) -> list[str]:
    return [f"{c.category}.{c.metric} {c.kind}" for c in checks if c.verdict == "fail"]


# -- simulation -------------------------------------------------------------------------------------------


def stream(*parts: object) -> int:
    """A reproducible seed for one stream of images (a run, a role)."""
    digest = hashlib.sha256("|".join(map(str, ("bench-stat-validity", *parts))).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def seeds_for(stream_seed: int, category: str, n: int, start: int = 0) -> list[int]:
    """Image seeds as the generation stage plans them (prompt 0, images 0..n-1), from a stream's suite seed."""
    return [image_seed(stream_seed, category, 0, i) for i in range(start, n)]


def run_pair(
    ctx: Context,
    base: SyntheticGenerator,
    cand: SyntheticGenerator,
    category: str,
    n: int,
    run_id: tuple[object, ...],
    coupled: bool,
    start: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The uniforms of images ``start``..n-1 of one category's baseline and candidate: the candidate on the
    baseline's own seeds (``coupled``: a model changed a little) or on an independent stream (a retrained
    model); either way the candidate's image i is paired with the baseline's image i."""
    base_u = base.uniforms(category, seeds_for(stream(*run_id, "baseline"), category, n, start))
    cand_u = base_u if coupled else cand.uniforms(category, seeds_for(stream(*run_id, "candidate"), category, n, start))
    return base_u, cand_u


@dataclass
class Rates:
    """Failing runs of one scenario under each rule, and which checks failed."""

    runs: int = 0
    ours: int = 0
    naive: int = 0
    ours_by: Counter[str] = field(default_factory=Counter)
    naive_by: Counter[str] = field(default_factory=Counter)
    beyond: Counter[str] = field(default_factory=Counter)  # worsening beyond the allowed regression, any test
    ours_kind: Counter[str] = field(default_factory=Counter)  # runs failing a bound / a regression check
    naive_kind: Counter[str] = field(default_factory=Counter)

    def add(self, ours: Sequence[Check], naive: Sequence[Check]) -> None:
        self.runs += 1
        self.beyond.update(
            {
                f"{c.category}.{c.metric}"
                for c in ours
                if c.kind == "regression" and c.delta is not None and c.allowed is not None and c.delta > c.allowed
            }
        )
        f_ours, f_naive = failed(ours), failed(naive)
        self.ours += bool(f_ours)
        self.naive += bool(f_naive)
        self.ours_by.update(set(f_ours))
        self.naive_by.update(set(f_naive))
        self.ours_kind.update({c.kind for c in ours if c.verdict == "fail"})
        self.naive_kind.update({c.kind for c in naive if c.verdict == "fail"})

    def rate(self, rule: str) -> float:
        return (self.ours if rule == "ours" else self.naive) / max(self.runs, 1)

    def interval(self, rule: str) -> Interval:
        return wilson_interval(self.ours if rule == "ours" else self.naive, max(self.runs, 1))

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "ours": self.rate("ours"),
            "naive": self.rate("naive"),
            "ours_by": dict(self.ours_by),
            "naive_by": dict(self.naive_by),
            "beyond_margin": dict(self.beyond),
            "ours_by_kind": dict(self.ours_kind),
            "naive_by_kind": dict(self.naive_kind),
        }


def simulate_suite(
    ctx: Context, base: SyntheticGenerator, cand: SyntheticGenerator, n: int, runs: int, tag: str, coupled: bool
) -> Rates:
    """Whole-suite runs: every category drawn, every fail-level check judged, Holm across the run."""
    rates = Rates()
    for r in range(runs):
        evals = []
        for category in ctx.suite.categories:
            base_u, cand_u = run_pair(ctx, base, cand, category, n, (tag, r), coupled)
            evals.append(ctx.evaluate(category, ctx.data(category, base, base_u), ctx.data(category, cand, cand_u)))
        if coupled:  # unchanged categories are identical image for image: their tests must say "no change"
            for e in evals:
                if e.category != "doctor":
                    assert all(c.p_value == 1.0 for c in e.comparisons.values()), e.category
        rates.add(*ctx.judge(evals))
    return rates


def others_p(ctx: Context, category: str) -> list[float]:
    """P-values of the unchanged categories' fail-level comparisons: identical images give exactly 1."""
    return [1.0] * sum(ctx.family_size(c) for c in ctx.suite.categories if c != category)


def simulate_one_category(
    ctx: Context,
    base: SyntheticGenerator,
    cand: SyntheticGenerator,
    category: str,
    grid: Sequence[int],
    runs: int,
    tag: str,
    target: float | None = None,
    confirm: int = 2,
) -> dict[int, Rates]:
    """Runs with only ``category`` changed (coupled draws), at each n of ``grid`` in increasing order.

    A run's images at n are the first n of one sequence (the seed plan's images 0..n-1), drawn as n grows,
    so the grid shares its random numbers. With a ``target`` the search stops ``confirm`` grid points after
    both rules reach it. The unchanged categories enter Holm with p = 1 (what identical draws give;
    asserted in the full-suite power row); their bounds do not depend on the change and are left out.
    """
    extra = others_p(ctx, category)
    width = base.uniforms(category, [0]).shape[1]
    drawn: list[NDArray[np.float64]] = [np.zeros((0, width))] * runs
    per_n: dict[int, Rates] = {}
    reached: dict[str, int | None] = {"ours": None, "naive": None}
    for n in sorted(grid):
        rates = per_n[n] = Rates()
        for r in range(runs):
            if len(drawn[r]) < n:
                new, _ = run_pair(ctx, base, cand, category, n, (tag, r), True, start=len(drawn[r]))
                drawn[r] = np.vstack([drawn[r], new])
            u = drawn[r][:n]
            rates.add(
                *ctx.judge([ctx.evaluate(category, ctx.data(category, base, u), ctx.data(category, cand, u))], extra)
            )
        if target is None:
            continue
        for rule in reached:
            if reached[rule] is None and rates.rate(rule) >= target:
                reached[rule] = n
        if all(v is not None for v in reached.values()):
            confirm -= 1
            if confirm < 0:
                break
    return per_n


# -- report -------------------------------------------------------------------------------------------------


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def rate_text(rates: Rates, rule: str) -> str:
    iv = rates.interval(rule)
    return f"{percent(rates.rate(rule)):>6} [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"


def top_checks(counter: Counter[str], runs: int, k: int = 3) -> str:
    if not counter:
        return "-"
    return ", ".join(f"{name} {percent(count / runs)}" for name, count in counter.most_common(k))


def population_values(ctx: Context, generator: SyntheticGenerator, category: str, n: int = 200_000) -> dict[str, float]:
    """The gated metrics at the model's own distribution (a very large sample: the engine on 2e5 images)."""
    rng = np.random.default_rng(12345)
    width = generator.uniforms(category, [0]).shape[1]
    values = compute_data(ctx.data(category, generator, rng.random((n, width))), only=list(ctx.rules[category]))
    return {m: float(v) for m, v in values.metrics.items() if isinstance(v, float)}


def bounds_text(ctx: Context, generator: SyntheticGenerator) -> str:
    parts = []
    for category in ctx.suite.categories:
        values = population_values(ctx, generator, category)
        for metric_id, rule in ctx.rules[category].items():
            if rule.min is None and rule.max is None:
                continue
            limits = "/".join(f"{b:g}" for b in (rule.min, rule.max) if b is not None)
            parts.append(f"{category}.{metric_id} {values[metric_id]:.2f} ({limits})")
    return ", ".join(parts)


def parse_grid(text: str) -> list[int]:
    if ":" in text:
        lo, hi, step = (int(x) for x in text.split(":"))
        return list(range(lo, hi + 1, step))
    return sorted({int(x) for x in text.split(",")})


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="simulated runs per row (default 500; --quick 60)")
    parser.add_argument(
        "--boot", type=int, default=None, help=f"bootstrap replicates (default the package's, {N_PAIRED_BOOT})"
    )
    parser.add_argument("--n", type=int, default=None, help="images per category for row 1 (default the suite's)")
    parser.add_argument("--power-n", type=int, default=200, help="images per category for rows 2 and 4")
    parser.add_argument("--grid", default="100:1600:50", help="n searched in row 3: lo:hi:step or a,b,c")
    parser.add_argument("--seed", type=int, default=0, help="master seed of the image streams")
    parser.add_argument("--policy", type=Path, default=ROOT / "thresholds" / "t2i-biasbench.yaml")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run: 60 runs, B 200, coarse grid")
    parser.add_argument(
        "--margin-test", action="store_true", help="judge with the policy's margin_test on (see docs/plugin.md)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = args.runs or 60
        args.boot = args.boot or 200
        args.grid = "100,200,400,800,1600" if args.grid == "100:1600:50" else args.grid
    runs = args.runs or 500
    start = time.perf_counter()

    suite = load_suite("t2i-biasbench")
    policy = load_policy(args.policy, suite)
    if args.margin_test:
        policy = policy.model_copy(update={"margin_test": True})
    ctx = Context.make(suite, policy, args.boot)
    n_suite = args.n or suite.images_per_prompt * len(suite.categories["doctor"].prompts)
    grid = parse_grid(args.grid)
    uniform = SyntheticGenerator(suite)
    skewed = SyntheticGenerator(suite, SKEWED)

    def shifted(male: float) -> SyntheticGenerator:
        return uniform.with_probabilities("doctor", {"male": male, "female": round(1 - male, 10)})

    report: dict[str, Any] = {"runs": runs, "boot": ctx.n_pair_boot, "n": n_suite}
    family = sum(ctx.family_size(c) for c in suite.categories)
    hard = sum((r.min is not None) + (r.max is not None) for rules in ctx.rules.values() for r in rules.values())
    print(
        f"synthetic model, suite {suite.name} ({len(suite.categories)} categories), policy {args.policy.name}, "
        f"{MODE} mode: fail-level rules only, {family} regression checks ({policy.correction}, alpha "
        f"{policy.alpha}), {hard} hard bounds"
    )
    print(
        f"{runs} runs per row, B = {ctx.n_pair_boot} paired / {ctx.n_iv_boot} interval bootstrap replicates "
        f"(package: {N_PAIRED_BOOT} / {N_BOOT}), image streams seeded from {args.seed}; every value, interval, "
        "test and verdict computed by the package"
    )

    rows: list[tuple[str, str, Rates, str]] = []
    null_uniform = simulate_suite(ctx, uniform, uniform, n_suite, runs, f"null-uniform-{args.seed}", coupled=False)
    rows.append((f"1. false failures, no change, uniform, n={n_suite}", "1 uniform", null_uniform, "<= 1%"))
    null_skewed = simulate_suite(ctx, skewed, skewed, n_suite, runs, f"null-skewed-{args.seed}", coupled=False)
    rows.append((f"   false failures, no change, skewed,  n={n_suite}", "1 skewed", null_skewed, "<= 1%"))
    power = simulate_suite(ctx, uniform, shifted(0.65), args.power_n, runs, f"power-{args.seed}", coupled=True)
    rows.append((f"2. power, doctor male .50 -> .65, n={args.power_n}", "2 power", power, f">= {TARGET_POWER:.0%}"))
    search = simulate_one_category(
        ctx, uniform, shifted(0.60), "doctor", grid, runs, f"search-{args.seed}", target=TARGET_POWER
    )
    margin = simulate_one_category(ctx, uniform, shifted(0.54), "doctor", [args.power_n], runs, f"margin-{args.seed}")
    margin_rates = margin[args.power_n]
    rows.append((f"4. within the margin, doctor .50 -> .54, n={args.power_n}", "4 in margin", margin_rates, "-"))

    def needed(rule: str) -> int | None:
        return next((n for n in sorted(search) if search[n].rate(rule) >= TARGET_POWER), None)

    found = {rule: needed(rule) for rule in ("ours", "naive")}
    analytic = images_for_power(0.10, 0.10, policy.alpha)
    analytic_holm = images_for_power(0.10, 0.10, policy.alpha / family)

    def shown(value: int | None) -> str:
        return f"> {max(search)}" if value is None else str(value)

    width = 52
    print()
    print(f"{'':<{width}} {'ours':>17}  {'naive':>17}   target (ours)")
    for label, _, rates, target in rows[:3]:
        print(f"{label:<{width}} {rate_text(rates, 'ours')}  {rate_text(rates, 'naive')}   {target}")
    label3 = f"3. images/category for {TARGET_POWER:.0%} power, .50 -> .60"
    print(
        f"{label3:<{width}} {shown(found['ours']):>17}  {shown(found['naive']):>17}   "
        f"(analytic images_for_power(0.10, discordant 0.10): {analytic} at alpha {policy.alpha}, "
        f"{analytic_holm} at alpha/{family})"
    )
    label4, _, rates4, _ = rows[3]
    print(
        f"{label4:<{width}} {rate_text(rates4, 'ours')}  {rate_text(rates4, 'naive')}   (reference: PD +0.08 <= 0.10)"
    )
    print("   [ ]: 95% Wilson interval over the runs")
    print()
    print(
        f"   row 3, failing runs by n (ours / naive; search stops 2 grid points after both reach {TARGET_POWER:.0%}):"
    )
    points = sorted(search)
    for i in range(0, len(points), 5):
        chunk = points[i : i + 5]
        print(
            "     "
            + "; ".join(f"{n}: {percent(search[n].rate('ours'))} / {percent(search[n].rate('naive'))}" for n in chunk)
        )
    chosen = found["ours"] or max(search)
    at = search[chosen]
    print(
        f"   row 3 at n={chosen}: checks failing (ours): {top_checks(at.ours_by, at.runs, 4)}; "
        f"worsening beyond the allowed regression: {top_checks(at.beyond, at.runs, 4)}"
    )
    print("   runs failing a bound / a regression check, and the most frequent failing checks:")
    for _, short, rates, _ in rows:
        for rule, kinds, by in (("ours", rates.ours_kind, rates.ours_by), ("naive", rates.naive_kind, rates.naive_by)):
            split = " / ".join(percent(kinds[k] / rates.runs) for k in ("bound", "regression"))
            print(
                f"     {short if rule == 'ours' else '':<12} {rule + ':':<6} {split:>13};  {top_checks(by, rates.runs)}"
            )
    print(f"   skewed model's population values (bounds): {bounds_text(ctx, skewed)}")
    elapsed = time.perf_counter() - start
    print(f"elapsed {elapsed:.0f} s")

    report.update(
        {
            "false_failure_uniform": null_uniform.as_dict(),
            "false_failure_skewed": null_skewed.as_dict(),
            "power": power.as_dict(),
            "within_margin": margin_rates.as_dict(),
            "images_needed": found,
            "power_curve": {n: search[n].as_dict() for n in points},
            "analytic_images": {"alpha": analytic, "alpha_over_family": analytic_holm},
            "elapsed_s": elapsed,
        }
    )
    return report


if __name__ == "__main__":
    main()
