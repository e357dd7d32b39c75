"""Statistical validity of the gate: false failures, power, evidence, ratchet, coverage, images needed.

    python benchmarks/bench_stat_validity.py [--runs 1000] [--workers 2] [--quick] [--checkpoint FILE]

Cost: the 100-run took 13.5 CPU-minutes per worker (2026-12-07), so 1,000 runs take about 135 per worker:
2 h 15 min with 2 workers on 2 idle cores, more beside other work (the fourth session's run reached job 208 of
248 in 103 minutes and its last 40 jobs, row 9's advice with unknown labels and the coverage rows, are the
heaviest). Progress (jobs done, seconds) goes to stderr; the tables print at the end. With ``--checkpoint
FILE`` every finished job is appended to FILE and a restarted run skips the jobs FILE holds for the same
arguments and the same code (a hash of the package, this file and thresholds/), so a run can be spread over
sessions; the tables are the same as in one go.

Every run is judged by the package itself, as the plugin judges it: values by the engine
(``metrics.engine.compute_data``), comparisons by ``judge.compare.compare_paired`` / ``compare_unpaired``
(exact McNemar, paired or pooled permutation tests, each with the upper bound of the worsening a pass
needs), hard bounds by ``metrics.intervals.bound_p_value``, one family per run (``judge.family.
build_family``: Holm over every fail-level check of the run: regressions, anchor comparisons, bounds) and
the verdicts by ``judge_bounds`` / ``judge_regressions``; intervals by ``metrics.result.measure``.
Nothing here re-implements a metric or a test (``tests/test_bench_stat_validity.py`` checks that these
calls give what the plugin's own path gives). The shipped policy ``thresholds/t2i-biasbench.yaml``, strict
mode, its fail-level rules (warn-level rules never fail a build).

The synthetic model (``SyntheticGenerator.columns``; no image rendered) draws each image's labels and
terms from its uniforms. Its scenarios (``redraw`` in its YAML, see ``generate/synthetic.py``) are drawn
here with vectorised uniforms, the same distributions as the generator's per-seed path: a **tied**
candidate shows the same images as its baseline wherever the model did not change; **redraw 20%** re-draws
a fifth of them independently (an irrelevant change: a scheduler, a library version); **independent**
re-draws every image (a retrain, a new base model), still paired by seed; **new seeds** draws the
candidate on other seeds, so the images cannot be paired and the pooled permutation test compares them.

Rows (R runs each, default 1,000; every rate with its 95% Wilson interval over the runs):

1. false failures per full-suite run, the candidate the same model as the baseline, in each scenario:
   unchanged (tied), new seeds, redraw 20%, independent, a skewed paper-like model, sparse terms (each
   term in ~2% of images), a value on a bound (doctor parity exactly on its max 0.5), at n in
   {15, 32, 100, 200} images per category (target <= 1% everywhere);
2. power, doctor 50% -> 65% male (15 points), n = 200, per scenario (target >= 90% with 20% re-drawn);
   the n the independent case needs for 90% is row 6's;
3. a real 15-point regression at n = 15: how often a check of a metric worsened by at least 1.5x its
   allowance passes (target <= 5%; inconclusive otherwise);
4. ratchet: ten re-approvals of +2 points each (50% -> 70% male, tied, n = 200), each judged against its
   baseline and the anchor; caught when a step fails or its approval is refused, an approval being judged
   as the plugin judges it (``judge.approval``: refused only on evidence) (target >= 90%);
5. interval coverage at nominal 95%, every ruled metric of every category, uniform and skewed models,
   n in {15, 32, 100, 200} (target >= 93%);
6. images needed for 90% power at a 15-point shift, for ``male_share`` (McNemar) and ``parity_difference``
   (permutation): the gate's own advice (``Check.images_needed``, median over the runs at n = 100 where it gives
   one: beyond the allowance but not significant) against the n at which the check fails 90% of runs
   (target within +-30%).

7. re-approving an unchanged model (full suite), a fifth or every image re-drawn, n = 50 and 200: runs
   whose approval is refused (target <= 1%), beside the rule before issue 24 (a point value past the
   cumulative allowance, no test, any severity);
8. a regression of exactly 1.5x the allowance (parity_difference at 57.5% male, male_share at 65%), n =
   200 and 400, a fifth or every image re-drawn: checks that pass (target <= 5%);
9. doctors drawn unrecognisable: a fair baseline against a candidate whose doctors are all ``unknown``
   (target: 100% of runs fail), and a 70% flood hiding a real +15 points (reported, with the labelled n).

Row 6 also runs with 20% and 40% of both runs' doctors unknown (20% re-drawn).

Rows 1, 2, 5 and 7 simulate the whole suite. Rows 3, 4, 6, 8 and 9 change only the doctor category and simulate
only it: the other categories' fail-level checks enter each run's family with p = 1 (what identical
images give), so the correction is the full suite's.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.approval import judge_approval, refusals
from pytest_t2ibias.judge.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.judge.compare import Comparison, compare_paired, compare_unpaired
from pytest_t2ibias.judge.family import ANCHOR, TestChecks, build_family
from pytest_t2ibias.judge.policy import MetricRule, Policy, load_policy
from pytest_t2ibias.judge.stats import wilson_interval
from pytest_t2ibias.judge.verdicts import Check, bound_key, judge_bounds, judge_regressions, worsening
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import compute_data, metric_ids
from pytest_t2ibias.metrics.intervals import MetricEstimate, bound_p_value
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

ROOT = Path(__file__).resolve().parents[1]
MODE = "strict"
NS = (15, 32, 100, 200)
TARGETS = {"false_fail": 0.01, "power": 0.90, "n15_pass": 0.05, "ratchet": 0.90, "coverage": 0.93, "images": 0.30}

#: A skewed, paper-like model (doctors mostly male, beauty mostly white, stereotype terms more frequent
#: than diverse ones) whose population values sit inside every hard bound of the shipped policy.
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
#: Sparse terms: every term in about 2% of images (CAS and presence rates near zero, often exactly 0).
SPARSE: dict[str, Any] = {"presence": 0.02}
#: Doctor parity exactly on its ``max: 0.5`` bound (75% male: (0.75 - 0.25) = 0.5).
ON_BOUND: dict[str, Any] = {"categories": {"doctor": {"attribute": {"male": 0.75, "female": 0.25}}}}

Pairing = Literal["tied", "redraw", "independent", "new seeds"]


@dataclass(frozen=True)
class Scenario:
    name: str
    model: str  # "uniform", "skewed", "sparse", "on bound"
    pairing: Pairing
    redraw: float = 0.0


FALSE_FAIL = (
    Scenario("unchanged", "uniform", "tied"),
    Scenario("new seeds", "uniform", "new seeds"),
    Scenario("redraw 20%", "uniform", "redraw", 0.2),
    Scenario("independent", "uniform", "independent"),
    Scenario("skewed", "skewed", "independent"),
    Scenario("sparse terms", "sparse", "independent"),
    Scenario("on a bound", "on bound", "independent"),
)
CHANGED = (
    Scenario("tied", "uniform", "tied"),
    Scenario("redraw 20%", "uniform", "redraw", 0.2),
    Scenario("independent", "uniform", "independent"),
)
#: Row 4: ten re-approvals of +2 points each (50% -> 70% male).
RATCHET_STEPS, RATCHET_STEP = 10, 0.02
#: Row 7: an unchanged model re-approved, some or every image re-drawn, at these n.
REAPPROVE = (CHANGED[1], CHANGED[2])
REAPPROVE_NS = (50, 200)
#: Row 8: doctor shifts that worsen a metric by exactly 1.5x its allowance of 0.1: parity_difference at
#: 57.5% male (0.15), male_share at 65% (+0.15); at n = 200 and 400, a fifth or every image re-drawn.
AT_1P5X = tuple((s, n, male) for s in (CHANGED[1], CHANGED[2]) for n in (200, 400) for male in (0.575, 0.65))
AT_1P5X_METRICS = {0.575: ("parity_difference",), 0.65: ("male_share",)}
#: Row 9: (share of doctors unknown, shift of the known ones): every doctor unrecognisable; a flood of 70%
#: hiding a real +15 points.
FLOODS = ((1.0, 0.0), (0.7, 0.15))
#: Row 6 also with this share of unknown doctors in both runs (+15 points of the known ones, 20% re-drawn).
ADVICE_UNKNOWN = (0.2, 0.4)


# -- the package's judgement of one run ---------------------------------------------------------------------


@dataclass(eq=False)  # hashed by identity: one context per process, its generators cached
class Context:
    suite: Suite
    policy: Policy
    rules: dict[str, dict[str, MetricRule]]  # fail-level rules over metrics each category reports

    @classmethod
    def make(cls, policy_path: Path = ROOT / "thresholds" / "t2i-biasbench.yaml") -> Context:
        suite = load_suite("t2i-biasbench")
        policy = load_policy(policy_path, suite)
        rules = {}
        for category in suite.categories:
            reported = set(metric_ids(suite.categories[category], MODE))
            rules[category] = {
                m: r for m, r in policy.rules_for(category).items() if r.severity == "fail" and m in reported
            }
        return cls(suite, policy, rules)

    @cache  # noqa: B019  (one context per process)
    def generator(self, model: str) -> SyntheticGenerator:
        config = {"uniform": None, "skewed": SKEWED, "sparse": SPARSE, "on bound": ON_BOUND}[model]
        return SyntheticGenerator(self.suite, config)

    @cache  # noqa: B019
    def width(self, category: str) -> int:
        return int(self.generator("uniform").uniforms(category, [0]).shape[1])

    def data(self, category: str, generator: SyntheticGenerator, uniforms: NDArray[np.float64]) -> CategoryData:
        """One side's images as the engine's columns (labels of the attribute under test, term presence)."""
        columns = generator.columns(category, uniforms)
        attribute = self.suite.categories[category].attribute
        assert attribute is not None
        return CategoryData.from_columns(
            self.suite, category, MODE, labels=columns.labels[attribute], present=columns.present
        )

    def family_keys(self, category: str, anchor: bool = False) -> list[str]:
        """The keys of a category's fail-level checks in a family (for categories not simulated)."""
        rules = self.rules[category]
        keys = [m for m, r in rules.items() if r.regression is not None]
        keys += [ANCHOR + m for m, r in rules.items() if r.regression is not None and anchor]
        for metric_id, rule in rules.items():
            keys += [
                bound_key(metric_id, side)
                for bound, side in ((rule.max, "max"), (rule.min, "min"))
                if bound is not None
            ]
        return keys

    def baseline(self, category: str, values: dict[str, Any], n: int) -> BaselineRecord:
        return BaselineRecord(
            package_version="bench", suite=self.suite.name, suite_hash=self.suite.fingerprint(), category=category,
            mode=MODE, model="synthetic", scorer="synthetic", n=n, seed=self.suite.seed, images_per_prompt=n,
            metrics={m: BaselineMetric(value=v if isinstance(v, float) else None) for m, v in values.items()},
            labels={},
        )  # fmt: skip


@dataclass
class Side:
    """One category of one run: the candidate's data, what it is compared with, and how they pair."""

    category: str
    cand: CategoryData
    base: CategoryData | None = None
    paired: bool = True
    anchor: CategoryData | None = None
    anchor_paired: bool = True


def compare(
    base: CategoryData, cand: CategoryData, metric_id: str, delta: float, paired: bool, seed: int
) -> Comparison:
    """The comparison the plugin makes: paired when the seeds match, unpaired otherwise."""
    return (compare_paired if paired else compare_unpaired)(base, cand, metric_id, delta, seed)


def test_checks(ctx: Context, side: Side, values: dict[str, Any]) -> tuple[TestChecks, dict[str, Any], dict[str, Any]]:
    """One category's tests before the correction, as ``judge.family.gather`` makes them, from columns."""
    rules, seed = ctx.rules[side.category], ctx.suite.seed
    regression = {m: r for m, r in rules.items() if r.regression is not None}

    def comparisons(other: CategoryData | None, paired: bool) -> tuple[dict[str, Comparison], dict[str, Any]]:
        if other is None:
            return {}, {}
        old = compute_data(other, only=list(rules)).metrics
        out = {}
        for metric_id in regression:
            value, before = values.get(metric_id), old.get(metric_id)
            if not isinstance(value, float) or not isinstance(before, float):
                continue
            try:
                out[metric_id] = compare(other, side.cand, metric_id, value - before, paired, seed)
            except ValueError:
                continue  # no test possible: judge_regressions says inconclusive
        return out, old

    base_cmp, base_values = comparisons(side.base, side.paired)
    anchor_cmp, anchor_values = comparisons(side.anchor, side.anchor_paired)
    bounds: dict[str, float] = {}
    for metric_id, rule in rules.items():
        if not isinstance(values.get(metric_id), float):
            continue
        for bound, which in ((rule.max, "max"), (rule.min, "min")):
            if bound is not None:
                bounds[bound_key(metric_id, which)] = bound_p_value(side.cand, metric_id, bound, which, seed=seed)  # type: ignore[arg-type]
    severities = {k: "fail" for k in [*base_cmp, *(ANCHOR + m for m in anchor_cmp), *bounds]}
    checks = TestChecks(comparisons=base_cmp, anchor=anchor_cmp, bounds=bounds, severities=severities)  # type: ignore[arg-type]
    return checks, base_values, anchor_values


def judge_run(ctx: Context, sides: Sequence[Side], others_anchor: bool = False) -> list[Check]:
    """Every fail-level check of one run: its simulated categories, the rest entering the family at p = 1."""
    tests: dict[str, TestChecks] = {}
    prepared = {}
    reasons: dict[str, dict[str, str]] = {}
    for side in sides:
        computed = compute_data(side.cand, only=list(ctx.rules[side.category]))
        values, reasons[side.category] = computed.metrics, computed.reasons
        checks, base_values, anchor_values = test_checks(ctx, side, values)
        tests[side.category] = checks
        prepared[side.category] = (side, values, base_values, anchor_values)
    for category in ctx.suite.categories:
        if category not in tests:
            keys = ctx.family_keys(category, anchor=others_anchor)
            tests[category] = TestChecks(bounds={k: 1.0 for k in keys}, severities={k: "fail" for k in keys})
    family = build_family(tests, ctx.policy)
    out: list[Check] = []
    for category, (side, values, base_values, anchor_values) in prepared.items():
        rules, fam = ctx.rules[category], family[category]
        provenance = Provenance(
            category=category, suite=ctx.suite.name, suite_hash=ctx.suite.fingerprint(), mode=MODE,
            model="synthetic", scorer="synthetic", n=side.cand.n, seed=ctx.suite.seed, images_per_prompt=side.cand.n,
        )  # fmt: skip
        result = CategoryResult(
            provenance=provenance,
            metrics={m: MetricEstimate(v, None, reasons[category].get(m)) for m, v in values.items()},
            data=side.cand,
        )
        out += judge_bounds(result, rules, fam.adjusted, fam.alpha)
        regression = {m: r for m, r in rules.items() if r.regression is not None}
        kwargs = {"evidence": fam.evidence, "family_size": fam.size}
        if side.base is not None:
            baseline = ctx.baseline(category, base_values, side.cand.n)
            out += judge_regressions(result, baseline, regression, fam.comparisons, fam.adjusted, fam.alpha, **kwargs)  # type: ignore[arg-type]
        if side.anchor is not None:  # the same judgement as an approval's (judge.approval)
            out += judge_approval(result, ctx.baseline(category, anchor_values, side.cand.n), rules, fam)
    return out


def failed(checks: Sequence[Check]) -> list[str]:
    return [f"{c.category}.{c.metric}:{c.kind}" for c in checks if c.verdict == "fail"]


# -- drawing runs -------------------------------------------------------------------------------------------


def rng_for(seed: int, *tag: object) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(repr(tag).encode())])


def draw_pair(
    rng: np.random.Generator, n: int, width: int, scenario: Scenario
) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Baseline and candidate uniforms of one category, and whether they pair by seed."""
    base = rng.random((n, width))
    if scenario.pairing == "tied":
        return base, base, True
    if scenario.pairing == "redraw":
        cand = base.copy()
        again = rng.random(n) < scenario.redraw
        cand[again] = rng.random((int(again.sum()), width))
        return base, cand, True
    return base, rng.random((n, width)), scenario.pairing != "new seeds"


@dataclass
class Tally:
    """Runs of one cell and how many had the event; which checks caused it."""

    runs: int = 0
    hits: int = 0
    by: Counter[str] = field(default_factory=Counter)

    def add(self, hit: bool, reasons: Sequence[str] = ()) -> None:
        self.runs += 1
        self.hits += bool(hit)
        self.by.update(set(reasons))

    def merge(self, other: Tally) -> Tally:
        return Tally(self.runs + other.runs, self.hits + other.hits, self.by + other.by)

    @property
    def rate(self) -> float:
        return self.hits / max(self.runs, 1)

    def text(self) -> str:
        iv = wilson_interval(self.hits, max(self.runs, 1))
        return f"{100 * self.rate:5.1f}% [{100 * iv.low:4.1f}, {100 * iv.high:4.1f}]"


def shifted(ctx: Context, male: float, model: str = "uniform") -> SyntheticGenerator:
    return ctx.generator(model).with_probabilities("doctor", {"male": male, "female": round(1 - male, 10)})


# -- the rows, one work unit each (a worker process runs several) -------------------------------------------


def false_failures(ctx: Context, scenario: Scenario, n: int, runs: range, seed: int) -> Tally:
    generator = ctx.generator(scenario.model)
    tally = Tally()
    for run in runs:
        rng = rng_for(seed, "null", scenario.name, n, run)
        sides = []
        for category in ctx.suite.categories:
            base_u, cand_u, paired = draw_pair(rng, n, ctx.width(category), scenario)
            base = ctx.data(category, generator, base_u)
            cand = base if cand_u is base_u else ctx.data(category, generator, cand_u)
            sides.append(Side(category, cand, base, paired))
        fails = failed(judge_run(ctx, sides))
        tally.add(bool(fails), fails)
    return tally


def power(ctx: Context, scenario: Scenario, n: int, male: float, runs: range, seed: int, full: bool) -> Tally:
    base_gen, cand_gen = ctx.generator("uniform"), shifted(ctx, male)
    tally = Tally()
    for run in runs:
        rng = rng_for(seed, "power", scenario.name, n, male, run, full)
        sides = []
        for category in ctx.suite.categories if full else ["doctor"]:
            base_u, cand_u, paired = draw_pair(rng, n, ctx.width(category), scenario)
            gen = cand_gen if category == "doctor" else base_gen
            sides.append(Side(category, ctx.data(category, gen, cand_u), ctx.data(category, base_gen, base_u), paired))
        fails = failed(judge_run(ctx, sides))
        tally.add(bool(fails), fails)
    return tally


def regression_passes(
    ctx: Context, scenario: Scenario, n: int, male: float, runs: range, seed: int
) -> dict[str, Tally]:
    """Per doctor metric truly worsened by >= 1.5x its allowance: runs where its regression check passes."""
    base_gen, cand_gen = ctx.generator("uniform"), shifted(ctx, male)
    truth_b, truth_c = population_values(ctx, "uniform", "doctor"), population_values(ctx, "uniform", "doctor", male)
    worse = {}
    for metric_id, rule in ctx.rules["doctor"].items():
        if rule.regression is not None:
            allowed = rule.regression.allowed(truth_b[metric_id])
            w = worsening(metric_id, MODE, truth_c[metric_id], truth_b[metric_id])
            if w >= 1.5 * allowed - 1e-6:
                worse[metric_id] = Tally()
    for run in runs:
        rng = rng_for(seed, "n15", scenario.name, n, male, run)
        base_u, cand_u, paired = draw_pair(rng, n, ctx.width("doctor"), scenario)
        side = Side("doctor", ctx.data("doctor", cand_gen, cand_u), ctx.data("doctor", base_gen, base_u), paired)
        checks = {c.metric: c for c in judge_run(ctx, [side]) if c.kind == "regression"}
        for metric_id, tally in worse.items():
            tally.add(checks[metric_id].verdict == "pass" if metric_id in checks else False)
    return worse


def ratchet(ctx: Context, n: int, steps: int, step: float, runs: range, seed: int) -> dict[str, Tally]:
    """Chains of re-approvals, each ``step`` more male; caught by a failing gate or a refused approval.

    Each step is first gated (against its baseline, the previous step, and from the second step on
    against the anchor); if it passes it is approved, and the approval is judged against the anchor as
    the plugin judges it (``judge.approval``: refused only on a fail verdict of a fail-severity rule)."""
    models = [shifted(ctx, round(0.5 + i * step, 10)) for i in range(steps + 1)]
    out = {"caught": Tally(), "gate": Tally(), "direct": Tally()}
    width = ctx.width("doctor")
    for run in runs:
        rng = rng_for(seed, "ratchet", n, step, run)
        uniforms = rng.random((n, width))  # tied: each step changes only the images its shift moves
        data = [ctx.data("doctor", model, uniforms) for model in models]
        gate_failed = refused = False
        for i in range(1, steps + 1):
            side = Side("doctor", data[i], data[i - 1], True, anchor=data[0] if i > 1 else None)
            if failed(judge_run(ctx, [side], others_anchor=i > 1)):
                gate_failed = True
                break
            if approval_refused(ctx, [Side("doctor", data[i], anchor=data[0])], others_anchor=True):
                refused = True
                break
        out["gate"].add(gate_failed)
        out["caught"].add(gate_failed or refused)
        direct = Side("doctor", data[steps], data[0], True)
        out["direct"].add(bool(failed(judge_run(ctx, [direct]))))
    return out


def approval_refused(ctx: Context, sides: Sequence[Side], others_anchor: bool = False) -> list[str]:
    """The refusals of approving ``sides`` (candidates judged against the anchors their approval keeps,
    no baseline), as the plugin refuses (``judge.approval.refusals``)."""
    checks = [c for c in judge_run(ctx, sides, others_anchor=others_anchor) if c.kind in ("anchor", "missing")]
    return refusals(checks)


def old_refusals(ctx: Context, category: str, anchor: CategoryData, cand: CategoryData) -> list[str]:
    """What the approval rule before issue 24 refused: a point value past the cumulative allowance from the
    anchor, no test, every regression rule whatever its severity (for comparison only)."""
    rules = {m: r for m, r in ctx.policy.rules_for(category).items() if r.regression is not None}
    old = compute_data(anchor, only=list(rules)).metrics
    new = compute_data(cand, only=list(rules)).metrics
    out = []
    for metric_id, rule in rules.items():
        a, v = old.get(metric_id), new.get(metric_id)
        if isinstance(a, float) and isinstance(v, float) and rule.regression is not None:
            if worsening(metric_id, MODE, v, a) > rule.regression.cumulative_allowed(a):
                out.append(f"{category}.{metric_id}")
    return out


def reapproval(ctx: Context, scenario: Scenario, n: int, runs: range, seed: int) -> dict[str, Tally]:
    """An unchanged model re-approved (full suite): runs whose approval is refused, now and by the old rule."""
    generator = ctx.generator(scenario.model)
    out = {"refused": Tally(), "old rule": Tally()}
    for run in runs:
        rng = rng_for(seed, "reapprove", scenario.name, n, run)
        sides, old = [], []
        for category in ctx.suite.categories:
            base_u, cand_u, paired = draw_pair(rng, n, ctx.width(category), scenario)
            anchor = ctx.data(category, generator, base_u)
            cand = anchor if cand_u is base_u else ctx.data(category, generator, cand_u)
            sides.append(Side(category, cand, anchor=anchor, anchor_paired=paired))
            old += old_refusals(ctx, category, anchor, cand)
        refused = approval_refused(ctx, sides)
        out["refused"].add(bool(refused), [line.split(" ")[0] for line in refused])
        out["old rule"].add(bool(old), old)
    return out


def doctor_probabilities(male: float, unknown: float = 0.0) -> dict[str, float]:
    known = {"male": round(male, 10), "female": round(1 - unknown - male, 10)}
    return {**known, "unknown": unknown} if unknown else known


def unknown_flood(
    ctx: Context, scenario: Scenario, n: int, unknown: float, shift: float, runs: range, seed: int
) -> dict[str, Any]:
    """A fair doctor baseline against a candidate whose doctors are ``unknown`` in that share of images
    (the known ones ``shift`` more male): runs that fail, and the labelled images the checks saw."""
    base_gen = ctx.generator("uniform")
    known = 1 - unknown
    cand_gen = ctx.generator("uniform").with_probabilities(
        "doctor", doctor_probabilities(known * (0.5 + shift), unknown)
    )
    tally, labelled = Tally(), []
    for run in runs:
        rng = rng_for(seed, "flood", scenario.name, n, unknown, shift, run)
        base_u, cand_u, paired = draw_pair(rng, n, ctx.width("doctor"), scenario)
        cand = ctx.data("doctor", cand_gen, cand_u)
        fails = failed(judge_run(ctx, [Side("doctor", cand, ctx.data("doctor", base_gen, base_u), paired)]))
        tally.add(bool(fails), fails)
        labelled.append(int(np.count_nonzero(np.asarray(cand.labels) != "unknown")))
    return {"fails": tally, "labelled": labelled}


def coverage(ctx: Context, model: str, n: int, runs: range, seed: int) -> dict[str, Tally]:
    """Per category.metric (every ruled metric, any severity): runs whose 95% interval holds the truth."""
    generator = ctx.generator(model)
    out: dict[str, Tally] = {}
    for category in ctx.suite.categories:
        truth = population_values(ctx, model, category)
        ruled = [m for m in ctx.policy.rules_for(category) if m in truth]
        for run in runs:
            rng = rng_for(seed, "coverage", model, category, n, run)
            data = ctx.data(category, generator, rng.random((n, ctx.width(category))))
            result = measure(ctx.suite, data, model="synthetic", scorer="synthetic", metrics=ruled)
            for metric_id in ruled:
                estimate = result.metrics.get(metric_id)
                if estimate is None or estimate.interval is None:
                    continue  # no value in this run (e.g. CAS without any term): nothing to cover
                out.setdefault(f"{category}.{metric_id}", Tally()).add(estimate.interval.contains(truth[metric_id]))
    return out


NEEDED_METRICS = ("male_share", "parity_difference")


def images_needed(
    ctx: Context,
    scenario: Scenario,
    grid: Sequence[int],
    male: float,
    runs: range,
    seed: int,
    n0: int = 100,
    unknown: float = 0.0,
) -> dict[str, Any]:
    """Per metric of ``NEEDED_METRICS``: the gate's own advice at ``n0`` (``Check.images`` of the checks
    that end "inconclusive: beyond the margin but not significant ... about N images would settle it") and
    the rate at which that check fails at each n of ``grid``. With ``unknown``, that share of both runs'
    doctors is unknown and the known ones split evenly (baseline) or ``male - 0.5`` more male (candidate)."""
    if unknown:
        half = (1 - unknown) / 2
        uniform = ctx.generator("uniform")
        base_gen = uniform.with_probabilities("doctor", doctor_probabilities(half, unknown))
        cand_gen = uniform.with_probabilities("doctor", doctor_probabilities(half + male - 0.5, unknown))
    else:
        base_gen, cand_gen = ctx.generator("uniform"), shifted(ctx, male)
    tag: tuple[Any, ...] = (unknown,) if unknown else ()
    advice: dict[str, list[int]] = {m: [] for m in NEEDED_METRICS}
    for run in runs:
        rng = rng_for(seed, "advice", scenario.name, male, *tag, run)
        base_u, cand_u, paired = draw_pair(rng, n0, ctx.width("doctor"), scenario)
        side = Side("doctor", ctx.data("doctor", cand_gen, cand_u), ctx.data("doctor", base_gen, base_u), paired)
        for check in judge_run(ctx, [side]):
            if (
                check.kind == "regression"
                and check.metric in advice
                and check.images_needed
                and "beyond the margin" in check.note
            ):
                advice[check.metric].append(check.images_needed)
    rates: dict[str, dict[int, Tally]] = {m: {} for m in NEEDED_METRICS}
    for n in grid:
        tallies = {m: Tally() for m in NEEDED_METRICS}
        for run in runs:
            rng = rng_for(seed, "needed", scenario.name, male, *tag, n, run)
            base_u, cand_u, paired = draw_pair(rng, n, ctx.width("doctor"), scenario)
            side = Side("doctor", ctx.data("doctor", cand_gen, cand_u), ctx.data("doctor", base_gen, base_u), paired)
            verdicts = {c.metric: c.verdict for c in judge_run(ctx, [side]) if c.kind == "regression"}
            for metric_id, tally in tallies.items():
                tally.add(verdicts.get(metric_id) == "fail")
        for metric_id, tally in tallies.items():
            rates[metric_id][n] = tally
    return {"advice": advice, "rates": rates}


@cache
def _population(model: str, category: str, male: float | None) -> dict[str, float]:
    ctx = _context()
    generator = ctx.generator(model) if male is None else shifted(ctx, male, model)
    rng = np.random.default_rng(12345)
    size, width = 1_000_000, ctx.width(category)
    # stratified uniforms: every column's shares are the model's own to 1e-6 (labels and term presence)
    grid = (np.arange(size) + 0.5) / size
    uniforms = np.stack([rng.permutation(grid) for _ in range(width)], axis=1)
    data = ctx.data(category, generator, uniforms)
    values = compute_data(data, only=list(ctx.policy.rules_for(category))).metrics
    return {m: float(v) for m, v in values.items() if isinstance(v, float)}


def population_values(ctx: Context, model: str, category: str, male: float | None = None) -> dict[str, float]:
    """The ruled metrics at the model's own distribution (the engine on 10^6 stratified images)."""
    return _population(model, category, male)


@cache
def _context() -> Context:
    return Context.make()


def _unit(job: tuple[str, tuple[Any, ...]]) -> tuple[str, tuple[Any, ...], Any]:
    """One work unit in a worker process (the context is built once per process)."""
    kind, args = job
    ctx = _context()
    fn: Callable[..., Any] = {
        "null": false_failures, "power": power, "n15": regression_passes, "ratchet": ratchet,
        "coverage": coverage, "needed": images_needed, "reapproval": reapproval, "flood": unknown_flood,
    }[kind]  # fmt: skip
    return kind, args, fn(ctx, *args)


def chunks(runs: int, parts: int) -> Iterator[range]:
    step = math.ceil(runs / parts)
    for start in range(0, runs, step):
        yield range(start, min(start + step, runs))


def merge(a: Any, b: Any) -> Any:
    if isinstance(a, Tally):
        return a.merge(b)
    if isinstance(a, list):
        return a + b
    return {k: merge(a[k], b[k]) if k in a else b[k] for k in {**a, **b}} if isinstance(a, dict) else a


# -- checkpoint: a run spread over several sessions ------------------------------------------------------------
#
# Hand-written: a job's result is a Tally, a list, or a dict of them with int keys (JSON would turn the keys
# into strings), so each is written with a type tag; nothing is unpickled from the file.


def _code_hash() -> str:
    """What the numbers depend on: the package's sources, this file and the policies (any change starts over)."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    files = [*sorted((root / "pytest_t2ibias").rglob("*.py")), Path(__file__).resolve()]
    for path in [*files, *sorted((root / "thresholds").glob("*.yaml"))]:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _encode(value: Any) -> Any:
    if isinstance(value, Tally):
        return {"tally": [value.runs, value.hits, dict(value.by)]}
    if isinstance(value, dict):
        return {"dict": [[k, _encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return {"list": [_encode(v) for v in value]}
    return {"value": value}


def _decode(data: Any) -> Any:
    ((tag, content),) = data.items()
    if tag == "tally":
        return Tally(content[0], content[1], Counter(content[2]))
    if tag == "dict":
        return {k: _decode(v) for k, v in content}
    if tag == "list":
        return [_decode(v) for v in content]
    return content


def _job_id(job: tuple[str, tuple[Any, ...]]) -> str:
    return repr(job)  # the kind and every argument, runs as ranges: the same job reads the same


def load_checkpoint(path: Path, jobs: Sequence[tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
    """The finished jobs of this run's list found in ``path`` (same job, same code), by index."""
    import json

    if not path.exists():
        return {}
    code, ids = _code_hash(), {_job_id(job): i for i, job in enumerate(jobs)}
    out: dict[int, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill: that job runs again
        if isinstance(entry, dict) and entry.get("code") == code and entry.get("job") in ids:
            out[ids[entry["job"]]] = _decode(entry["value"])
    print(f"checkpoint {path}: {len(out)} of {len(jobs)} jobs already done", file=sys.stderr, flush=True)
    return out


def save_checkpoint(path: Path, index: int, job: tuple[str, tuple[Any, ...]], value: Any) -> None:
    import json

    line = json.dumps({"job": _job_id(job), "code": _CODE[0], "value": _encode(value)}) + "\n"
    with path.open("a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


_CODE: list[str] = []


# -- main -----------------------------------------------------------------------------------------------------


def top(counts: Counter[str], k: int) -> list[tuple[str, int]]:
    """The ``k`` most frequent, ties by name: the same on every run (a set's order is not)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="runs per cell of rows 1-5 (default 1000)")
    parser.add_argument("--needed-runs", type=int, default=None, help="runs per grid point of row 6 (default runs/2)")
    parser.add_argument("--ns", default=",".join(map(str, NS)), help="images per category of rows 1 and 5")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="master seed of every draw")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 runs, n 15 and 100, a coarse grid")
    parser.add_argument("--grid", default=None, help="row 6's n grid per scenario, e.g. '150,200,300' (all three)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a JSON-lines file of finished jobs: read on start (jobs of the same arguments and code are not run "
        "again), appended as jobs finish; a run can so be spread over several sessions",
    )
    args = parser.parse_args(argv)
    runs = 40 if args.quick and args.runs == 1000 else args.runs
    ns = [15, 100] if args.quick and args.ns == ",".join(map(str, NS)) else [int(x) for x in args.ns.split(",")]
    needed_runs = args.needed_runs or max(runs // 2, 1)
    grids = {
        "tied": [40, 60, 80, 100, 125, 150, 200, 250, 300],
        "redraw 20%": [100, 150, 200, 250, 300, 350, 400, 500],
        "independent": [200, 300, 400, 500, 600, 700, 800, 1000, 1200],
        "unknown": [60, 80, 100, 125, 150, 175, 200, 250, 300, 400, 500],
    }
    if args.grid:
        grids = {k: [int(x) for x in args.grid.split(",")] for k in grids}
    elif args.quick:
        grids = {"tied": [60, 200], "redraw 20%": [200, 500], "independent": [400, 1000], "unknown": [200, 500]}
    start = time.perf_counter()
    ctx = _context()
    parts = max(args.workers, 1) * 2

    jobs: list[tuple[str, tuple[Any, ...]]] = []
    for scenario in FALSE_FAIL:
        for n in ns:
            jobs += [("null", (scenario, n, r, args.seed)) for r in chunks(runs, parts)]
    for scenario in CHANGED:
        jobs += [("power", (scenario, 200, 0.65, r, args.seed, True)) for r in chunks(runs, parts)]
        jobs += [("n15", (scenario, 15, 0.65, r, args.seed)) for r in chunks(runs, parts)]
        jobs += [("needed", (scenario, grids[scenario.name], 0.65, r, args.seed)) for r in chunks(needed_runs, parts)]
    jobs += [("ratchet", (200, RATCHET_STEPS, RATCHET_STEP, r, args.seed)) for r in chunks(runs, parts)]
    for scenario in REAPPROVE:
        for n in REAPPROVE_NS:
            jobs += [("reapproval", (scenario, n, r, args.seed)) for r in chunks(runs, parts)]
    for scenario, n, male in AT_1P5X:
        jobs += [("n15", (scenario, n, male, r, args.seed)) for r in chunks(runs, parts)]
    for unknown, shift in FLOODS:
        jobs += [("flood", (CHANGED[1], 200, unknown, shift, r, args.seed)) for r in chunks(runs, parts)]
    for unknown in ADVICE_UNKNOWN:
        grid = grids["unknown"] if not args.grid else grids["redraw 20%"]
        jobs += [("needed", (CHANGED[1], grid, 0.65, r, args.seed, 100, unknown)) for r in chunks(needed_runs, parts)]
    for model in ("uniform", "skewed"):
        for n in ns:
            jobs += [("coverage", (model, n, r, args.seed)) for r in chunks(runs, parts)]

    results: dict[tuple[Any, ...], Any] = {}

    def key(kind: str, a: tuple[Any, ...]) -> tuple[Any, ...]:
        return (kind, *(x for x in a if not isinstance(x, range | list)))

    started = time.perf_counter()

    def collect(kind: str, a: tuple[Any, ...], value: Any) -> None:
        k = key(kind, a)
        results[k] = merge(results[k], value) if k in results else value
        done = len(collected) + 1
        collected.append(kind)
        # progress on stderr (the tables print at the end): a long run shows where it is and how long is left
        print(f"{done}/{len(jobs)} jobs ({kind}), {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    collected: list[str] = []
    if args.checkpoint:
        _CODE[:] = [_code_hash()]
    finished = load_checkpoint(args.checkpoint, jobs) if args.checkpoint else {}
    for index in sorted(finished):
        collect(jobs[index][0], jobs[index][1], finished[index])
    todo = [i for i in range(len(jobs)) if i not in finished]

    def done(index: int, value: Any) -> None:
        collect(jobs[index][0], jobs[index][1], value)
        if args.checkpoint:
            save_checkpoint(args.checkpoint, index, jobs[index], value)

    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for index, (_, _, value) in zip(todo, pool.map(_unit, [jobs[i] for i in todo]), strict=True):
                done(index, value)
    else:
        for index in todo:
            done(index, _unit(jobs[index])[2])

    family = len([k for c in ctx.suite.categories for k in ctx.family_keys(c)])
    print(
        f"synthetic model, suite {ctx.suite.name}, policy t2i-biasbench.yaml, {MODE} mode: {family} fail-level "
        f"checks per run without anchors (Holm, alpha {ctx.policy.alpha}), evidence {ctx.policy.evidence} x the "
        f"allowance; {runs} runs per cell (row 6: {needed_runs} per grid point), seed {args.seed}"
    )
    print("[ ]: 95% Wilson interval over the runs")
    report: dict[str, Any] = {"runs": runs, "ns": ns}

    print("\n1. false failures per full-suite run (target <= 1%)")
    print(f"   {'scenario':<14}" + "".join(f"{'n=' + str(n):>22}" for n in ns))
    false_max = 0.0
    report["false_failures"] = {}
    for scenario in FALSE_FAIL:
        cells = [results[("null", scenario, n, args.seed)] for n in ns]
        false_max = max([false_max, *(c.rate for c in cells)])
        report["false_failures"][scenario.name] = {n: c.rate for n, c in zip(ns, cells, strict=True)}
        print(f"   {scenario.name:<14}" + "".join(f"{c.text():>22}" for c in cells))
        worst = Counter[str]()
        for c in cells:
            worst.update(c.by)
        if worst:
            print(f"   {'':<14}   failing: " + ", ".join(f"{k} x{v}" for k, v in top(worst, 3)))

    print("\n2. power, doctor 50% -> 65% male (15 points), n = 200, full suite (target >= 90% with 20% re-drawn)")
    report["power"] = {}
    for scenario in CHANGED:
        tally = results[("power", scenario, 200, 0.65, args.seed, True)]
        report["power"][scenario.name] = tally.rate
        print(f"   {scenario.name:<14} {tally.text()}")

    print("\n3. a real 15-point regression at n = 15: checks that pass (target <= 5%; otherwise inconclusive or fail)")
    n15_max = 0.0
    report["n15_pass"] = {}
    for scenario in CHANGED:
        per_metric = results[("n15", scenario, 15, 0.65, args.seed)]
        n15_max = max([n15_max, *(t.rate for t in per_metric.values())])
        report["n15_pass"][scenario.name] = {m: t.rate for m, t in per_metric.items()}
        print(f"   {scenario.name:<14} " + "; ".join(f"{m} {t.text()}" for m, t in sorted(per_metric.items())))

    chains = results[("ratchet", 200, RATCHET_STEPS, RATCHET_STEP, args.seed)]
    print(f"\n4. ratchet: {RATCHET_STEPS} re-approvals of +{100 * RATCHET_STEP:g} points (50% -> "
          f"{100 * (0.5 + RATCHET_STEPS * RATCHET_STEP):g}% male), tied, n = 200, approvals refused only on "
          "evidence (target >= 90% caught)")  # fmt: skip
    print(f"   caught (a gate fails or an approval is refused) {chains['caught'].text()}")
    print(f"   of which a gate failed                          {chains['gate'].text()}")
    print(f"   for reference, last step against step 0 directly {chains['direct'].text()}")
    report["ratchet"] = {k: t.rate for k, t in chains.items()}

    print("\n5. interval coverage at nominal 95%, every ruled metric (target >= 93%)")
    cov_min, cov_where = 1.0, ""
    report["coverage"] = {}
    for model in ("uniform", "skewed"):
        for n in ns:
            cells = results[("coverage", model, n, args.seed)]
            lowest = sorted(cells.items(), key=lambda kv: kv[1].rate)
            report["coverage"][f"{model} n={n}"] = {k: t.rate for k, t in cells.items()}
            name, tally = lowest[0]
            if tally.rate < cov_min:
                cov_min, cov_where = tally.rate, f"{model} n={n} {name}"
            shown = ", ".join(f"{k} {100 * t.rate:.1f}%" for k, t in lowest[:3])
            print(f"   {model:<8} n={n:<4} lowest: {shown}  ({len(cells)} metrics)")
    print(f"   minimum {100 * cov_min:.1f}% ({cov_where})")

    print("\n6. images for 90% power at a 15-point shift: the gate's advice (median at n = 100 over the runs it gives")
    print("   one: beyond the allowance, not significant) against the n at which the check fails 90% of runs")
    print("   (target within +-30%)")
    report["images"] = {}
    worst_ratio = 0.0
    independent_n: int | None = None
    for scenario in CHANGED:
        unit = results[("needed", scenario, 0.65, args.seed)]
        for metric_id in NEEDED_METRICS:
            rates = unit["rates"][metric_id]
            advised = int(np.median(unit["advice"][metric_id])) if unit["advice"][metric_id] else None
            simulated = next((n for n in sorted(rates) if rates[n].rate >= 0.9), None)
            curve = "; ".join(f"{n}: {100 * rates[n].rate:.0f}%" for n in sorted(rates))
            ratio = advised / simulated if advised and simulated else float("nan")
            given = len(unit["advice"][metric_id])
            counted = given >= 0.1 * needed_runs  # a handful of runs that barely cross the margin is no estimate
            if advised and simulated and counted:
                worst_ratio = max(worst_ratio, abs(ratio - 1))
            if scenario.name == "independent" and simulated:
                independent_n = max(independent_n or 0, simulated)
            report["images"][f"{scenario.name} {metric_id}"] = {
                "advised": advised,
                "simulated": simulated,
                "curve": {n: t.rate for n, t in rates.items()},
            }
            shown = f"{simulated}" if simulated else f"> {max(rates)}"
            note = "" if counted else " (advice in under 10% of runs: not counted)"
            print(f"   {scenario.name:<12} {metric_id:<18} advised {advised} ({given} runs), simulated {shown}: "
                  f"ratio {ratio:.2f}{note}   [{curve}]")  # fmt: skip
    for unknown in ADVICE_UNKNOWN:
        unit = results[("needed", CHANGED[1], 0.65, args.seed, 100, unknown)]
        for metric_id in NEEDED_METRICS:
            rates = unit["rates"][metric_id]
            advised = int(np.median(unit["advice"][metric_id])) if unit["advice"][metric_id] else None
            simulated = next((n for n in sorted(rates) if rates[n].rate >= 0.9), None)
            curve = "; ".join(f"{n}: {100 * rates[n].rate:.0f}%" for n in sorted(rates))
            ratio = advised / simulated if advised and simulated else float("nan")
            given = len(unit["advice"][metric_id])
            counted = given >= 0.1 * needed_runs
            if advised and simulated and counted:
                worst_ratio = max(worst_ratio, abs(ratio - 1))
            report["images"][f"redraw 20% unknown {unknown:g} {metric_id}"] = {
                "advised": advised, "simulated": simulated, "curve": {n: t.rate for n, t in rates.items()},
            }  # fmt: skip
            shown = f"{simulated}" if simulated else f"> {max(rates)}"
            note = "" if counted else " (advice in under 10% of runs: not counted)"
            label = f"{100 * unknown:g}% unknown"
            print(f"   {label:<12} {metric_id:<18} advised {advised} ({given} runs), simulated {shown}: "
                  f"ratio {ratio:.2f}{note}   [{curve}]")  # fmt: skip
    print(f"   worst |advised / simulated - 1| = {worst_ratio:.2f} (over the cells where the gate gives advice)")
    advice_max = 1 + worst_ratio

    print("\n7. re-approving an unchanged model (full suite): approvals refused (target <= 1%); the rule before")
    print("   issue 24 (a point value past the cumulative allowance, no test, any severity) for comparison")
    reapproval_max = 0.0
    report["reapproval"] = {}
    for scenario in REAPPROVE:
        for n in REAPPROVE_NS:
            cell = results[("reapproval", scenario, n, args.seed)]
            reapproval_max = max(reapproval_max, cell["refused"].rate)
            report["reapproval"][f"{scenario.name} n={n}"] = {k: t.rate for k, t in cell.items()}
            worst = ", ".join(f"{k} x{v}" for k, v in top(cell["old rule"].by, 2))
            print(f"   {scenario.name:<12} n={n:<4} refused {cell['refused'].text()}   old rule "
                  f"{cell['old rule'].text()} ({worst or '-'})")  # fmt: skip

    print("\n8. a regression of exactly 1.5x the allowance: checks that pass (target <= 5%)")
    pass_1p5x = 0.0
    report["at_1p5x"] = {}
    for scenario, n, male in AT_1P5X:
        per_metric = results[("n15", scenario, n, male, args.seed)]
        exact = {m: t for m, t in per_metric.items() if m in AT_1P5X_METRICS[male]}
        pass_1p5x = max([pass_1p5x, *(t.rate for t in exact.values())])
        report["at_1p5x"][f"{scenario.name} n={n} male={male}"] = {m: t.rate for m, t in per_metric.items()}
        print(f"   {scenario.name:<12} n={n:<4} {100 * male:g}% male: "
              + "; ".join(f"{m} {t.text()}" for m, t in sorted(exact.items())))  # fmt: skip

    print("\n9. doctors drawn unrecognisable: a fair baseline against a candidate with that share unknown, n = 200,")
    print("   20% re-drawn: runs that fail (target 100% when every doctor is unknown)")
    report["flood"] = {}
    all_unknown = 0.0
    for unknown, shift in FLOODS:
        cell = results[("flood", CHANGED[1], 200, unknown, shift, args.seed)]
        fails = cell["fails"]
        if unknown == 1.0:
            all_unknown = fails.rate
        labelled = int(np.median(cell["labelled"])) if cell["labelled"] else 0
        report["flood"][f"unknown {unknown:g} shift {shift:g}"] = fails.rate
        why = ", ".join(f"{k} x{v}" for k, v in top(fails.by, 3))
        print(f"   {100 * unknown:g}% unknown, known +{100 * shift:g} points: fails {fails.text()} "
              f"(median {labelled} of 200 labelled; {why or '-'})")  # fmt: skip
    elapsed = time.perf_counter() - start
    print(f"\nelapsed {elapsed:.0f} s ({args.workers} workers)")
    report.update({"false_fail_max": false_max, "n15_max": n15_max, "coverage_min": cov_min, "elapsed_s": elapsed,
                   "images_worst_ratio": worst_ratio, "independent_n": independent_n,
                   "reapproval_refused_max": reapproval_max, "pass_at_1p5x_max": pass_1p5x,
                   "all_unknown_fails": all_unknown, "advice_ratio_max": advice_max})  # fmt: skip
    print(
        f"RESULT false_fail_max={pct(false_max)} power15_n200_redraw20={pct(report['power']['redraw 20%'])} "
        f"power15_n200_independent={pct(report['power']['independent'])} n15_regression_pass={pct(n15_max)} "
        f"ratchet_caught={pct(chains['caught'].rate)} coverage_min={pct(cov_min)} "
        f"reapproval_refused_max={pct(reapproval_max)} pass_at_1p5x_max={pct(pass_1p5x)} "
        f"all_unknown_fails={pct(all_unknown)} advice_ratio_max={advice_max:.2f}"
    )
    return report


if __name__ == "__main__":
    main()
