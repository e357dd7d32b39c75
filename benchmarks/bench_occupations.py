"""Statistics with 40+ categories: the occupations gate keeps its level and its power.

    python benchmarks/bench_occupations.py [--runs 1000] [--quick]

The synthetic model draws 40 occupations of the built-in ``occupations`` suite (the 40 first that are
not in ``occupations/small-sample``) at their labour-statistics shares of women: the model amplifies
nothing. Each run is judged as the plugin judges it, with the package's own functions and the shipped
``example_tests/thresholds/occupations.yaml``: per category the hard bound ``amplification_reference <=
0`` (``metrics.intervals.bound_p_value``), plus the aggregate bound ``mean_amplification <= 0``
(``metrics.aggregate.bound_p_value``), all in one family (``judge.family.build_family``: Holm at the
policy's alpha over the 41 checks). Labels are the synthetic model's (``SyntheticGenerator.columns``
on vectorised uniforms, as ``bench_stat_validity.py`` draws them).

Rows (R runs each, default 1,000; every rate with its 95% Wilson interval over the runs):

1. false failures per full-suite run at the real-world shares, 100 images per occupation (target <= 1%);
2. power: one occupation (drawn per run among the 40 that have room) amplified by 15 points (its
   majority's share + 0.15), 200 images per occupation: how often the run fails (target >= 90%); and
   which occupations the misses were;
3. the aggregate alone: how often ``mean_amplification <= 0`` fails in row 1's and row 2's runs;
4. for comparison, the same runs judged by an exact one-sided binomial test of each occupation's majority
   share (the most powerful test for two groups; not what the package does), in the same Holm family;
5. a small drift everywhere: every occupation with room amplified by 3 points, 100 images each: what the
   per-category checks cannot see and the aggregate check is there for;
6. with an approved baseline: the same policy plus ``female_share: {regression: {absolute: 0.05}}`` per
   occupation, the candidate compared with the baseline model's images on the same seeds, a fifth of them
   re-drawn (an irrelevant change: a scheduler, a library version; ``bench_stat_validity.py``'s "redraw
   20%"); one family of 40 regressions, 40 bounds and the aggregate (the bounds get ``bounds_alpha`` of
   alpha): false failures per run with nothing changed at 100 images (target <= 1%), and power with one
   occupation amplified by 15 points at 200 images (target >= 90%). Against the reference alone (row 2)
   a near-parity occupation's 15 points are ~4 standard errors of an unpaired share; against its own
   baseline on the same seeds, only the images that changed differ, and the exact McNemar test sees them.

A bound's p-value depends on the data only through the category's label counts, so it is computed once
per (occupation, count, n) and reused.
"""

from __future__ import annotations

import argparse
import functools
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.judge.compare import compare_paired
from pytest_t2ibias.judge.family import TestChecks, build_family, gather_aggregates
from pytest_t2ibias.judge.policy import Policy, load_policy, parse_policy
from pytest_t2ibias.judge.stats import holm, wilson_interval
from pytest_t2ibias.judge.verdicts import BOUND, bound_key, judge_regressions
from pytest_t2ibias.metrics import aggregate
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.intervals import MetricEstimate, binomial_tail, bound_p_value
from pytest_t2ibias.metrics.result import CategoryResult
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "example_tests" / "thresholds" / "occupations.yaml"
METRIC = "amplification_reference"
AGGREGATE = "mean_amplification"
OCCUPATIONS = 40
SHIFT = 0.15
DRIFT = 0.03
TARGETS = {"false_fail": 0.01, "power": 0.90}
#: Row 6: the regression rule added per occupation, and the share of images an irrelevant change re-draws.
REGRESSION = "female_share"
ALLOWED = 0.05
REDRAW = 0.2


def occupations(suite: Suite, count: int = OCCUPATIONS) -> list[str]:
    small = set(suite.groups().get("occupations/small-sample", ()))
    return [c for c in suite.categories if c not in small][:count]


def with_baseline(suite: Suite, path: Path = POLICY) -> Policy:
    """The shipped policy plus a regression rule on each occupation's share of women (row 6)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for rules in data["categories"].values():
        rules[REGRESSION] = {"regression": {"absolute": ALLOWED}}
    return parse_policy(data, f"{path.name} + {REGRESSION}: {{regression: {{absolute: {ALLOWED}}}}}", suite)


def amplified(suite: Suite, category: str, shift: float) -> dict[str, float] | None:
    """The category's labour shares with the majority's share raised by ``shift`` (None: no room)."""
    ref = suite.reference_of(category)
    assert ref is not None
    major = max(ref, key=lambda g: ref[g])
    if ref[major] + shift > 1:
        return None
    out = {g: (ref[g] + shift if g == major else ref[g] - shift) for g in ref}
    return {g: round(v, 10) for g, v in out.items()}


class Bench:
    def __init__(self) -> None:
        self.suite = load_suite("occupations")
        self.policy: Policy = load_policy(POLICY, self.suite)
        self.names = occupations(self.suite)
        self.truth = {c: self.suite.reference_of(c) or {} for c in self.names}
        self.generator = SyntheticGenerator.from_probabilities(self.suite, self.truth)
        self.bounds = {c: self.policy.rules_for(c)[METRIC].max for c in self.names}
        self.aggregate_max = self.policy.aggregate[AGGREGATE].max
        self.fingerprint = self.suite.fingerprint()  # a JSON dump of the whole suite: once, not per check

    @functools.cache  # noqa: B019 (one Bench per process, kept for the whole run)
    def p_value(self, category: str, female: int, n: int) -> float:
        """The package's bound p-value of the category's amplification for ``female`` women of ``n``."""
        records = [
            ImageRecord(image_id=f"{category}_{i}", category=category, labels={"gender": g}, seed=i)
            for i, g in enumerate(["female"] * female + ["male"] * (n - female))
        ]
        data = category_data(self.suite, category, records, "strict")
        bound = self.bounds[category]
        assert bound is not None
        return bound_p_value(data, METRIC, bound, "max", seed=self.suite.seed)

    @functools.cache  # noqa: B019
    def shifted(self, category: str, shift: float = SHIFT) -> SyntheticGenerator:
        shares = amplified(self.suite, category, shift)
        assert shares is not None
        return self.generator.with_probabilities(category, shares)

    @functools.cache  # noqa: B019
    def width(self, category: str) -> int:
        return int(self.generator.uniforms(category, [0]).shape[1])  # the uniforms one image reads

    def draw(self, rng: np.random.Generator, category: str, n: int, shift: float) -> int:
        """Women among ``n`` images of the synthetic model (its majority's share raised by ``shift``, where
        there is room), from vectorised uniforms."""
        room = shift > 0 and amplified(self.suite, category, shift) is not None
        generator = self.shifted(category, shift) if room else self.generator
        labels = generator.columns(category, rng.random((n, self.width(category))))
        return int(np.count_nonzero(labels.labels["gender"] == "female"))

    def run(
        self, rng: np.random.Generator, n: int, shifted: str | None, drift: float = 0.0
    ) -> tuple[bool, bool, list[str], list[str]]:
        """One run: (the run failed, the aggregate's check failed, the failing checks, and those an exact
        one-sided binomial test of each majority's share would fail in the same family)."""
        counts = {c: self.draw(rng, c, n, SHIFT if c == shifted else drift) for c in self.names}
        tests = {
            c: TestChecks(
                bounds={bound_key(METRIC, "max"): self.p_value(c, k, n)}, severities={bound_key(METRIC, "max"): "fail"}
            )
            for c, k in counts.items()
        }
        labels = {c: ["female"] * k + ["male"] * (n - k) for c, k in counts.items()}
        tests["aggregate"] = self.aggregate_checks(labels, rng)
        agg_key = bound_key(AGGREGATE, "max")
        family = build_family(tests, self.policy)
        failing = [t for t, f in family.items() if any(p < self.policy.alpha for p in f.adjusted.values())]
        exact = [self.exact_p(c, k, n) for c, k in counts.items()] + [tests["aggregate"].bounds[agg_key]]
        exact_failing = [c for c, p in zip(self.names, holm(exact), strict=False) if p < self.policy.alpha]
        return bool(failing), "aggregate" in failing, failing, exact_failing

    def aggregate_checks(self, labels: dict[str, list[str]], rng: np.random.Generator) -> TestChecks:
        """The aggregate's hard bounds as the plugin gathers them (``judge.family.gather_aggregates``)."""
        found = aggregate.aggregate_labels(self.suite, labels, seed=int(rng.integers(2**31)))
        return gather_aggregates(found, self.policy.aggregate)

    def labels(self, category: str, uniforms: np.ndarray, shift: float) -> np.ndarray:
        room = shift > 0 and amplified(self.suite, category, shift) is not None
        generator = self.shifted(category, shift) if room else self.generator
        return np.asarray(generator.columns(category, uniforms).labels["gender"])

    def run_vs_baseline(self, rng: np.random.Generator, n: int, shifted: str | None, policy: Policy) -> list[str]:
        """One run against an approved baseline (row 6): the occupations with a failing check.

        Baseline and candidate draw the same uniforms per seed except a re-drawn fifth; the shifted
        occupation's candidate reads them with its majority raised by 15 points. Bounds and the aggregate
        as in :meth:`run`; each occupation's share of women compared with its baseline by the package's
        paired test (``judge.compare.compare_paired``) and judged by ``judge.verdicts.judge_regressions``.
        """
        tests: dict[str, TestChecks] = {}
        values: dict[str, tuple[float, float]] = {}
        cand_labels: dict[str, list[str]] = {}
        key = bound_key(METRIC, "max")
        for c in self.names:
            base_u = rng.random((n, self.width(c)))
            cand_u = base_u.copy()
            again = rng.random(n) < REDRAW
            cand_u[again] = rng.random((int(again.sum()), self.width(c)))
            base = self.labels(c, base_u, 0.0)
            cand = self.labels(c, cand_u, SHIFT if c == shifted else 0.0)
            before, after = float(np.mean(base == "female")), float(np.mean(cand == "female"))
            comparison = compare_paired(
                CategoryData.from_columns(self.suite, c, "strict", labels=base),
                CategoryData.from_columns(self.suite, c, "strict", labels=cand),
                REGRESSION,
                after - before,
                self.suite.seed,
            )
            female = int(np.count_nonzero(cand == "female"))
            tests[c] = TestChecks(
                comparisons={REGRESSION: comparison},
                bounds={key: self.p_value(c, female, n)},
                severities={REGRESSION: "fail", key: "fail"},
            )
            values[c] = (before, after)
            cand_labels[c] = cand.tolist()
        tests["aggregate"] = self.aggregate_checks(cand_labels, rng)
        family = build_family(tests, policy)
        failing = []
        for test, fam in family.items():
            if any(p < policy.alpha for k, p in fam.adjusted.items() if k.startswith(BOUND)):
                failing.append(test)
                continue
            if test == "aggregate":
                continue
            before, after = values[test]
            rules = {REGRESSION: policy.rules_for(test)[REGRESSION]}
            checks = judge_regressions(
                self.result(test, n, after),
                self.baseline(test, n, before),
                rules,
                fam.comparisons,
                fam.adjusted,
                fam.alpha,
                evidence=fam.evidence,
                family_size=fam.size,
            )
            if any(check.verdict == "fail" for check in checks):
                failing.append(test)
        return failing

    def result(self, category: str, n: int, female_share: float) -> CategoryResult:
        provenance = Provenance(
            category=category, suite=self.suite.name, suite_hash=self.fingerprint, mode="strict",
            model="synthetic", scorer="synthetic", n=n, seed=self.suite.seed, images_per_prompt=n,
        )  # fmt: skip
        return CategoryResult(provenance=provenance, metrics={REGRESSION: MetricEstimate(female_share, None, None)})

    def baseline(self, category: str, n: int, female_share: float) -> BaselineRecord:
        return BaselineRecord(
            package_version="bench", suite=self.suite.name, suite_hash=self.fingerprint, category=category,
            mode="strict", model="synthetic", scorer="synthetic", n=n, seed=self.suite.seed, images_per_prompt=n,
            metrics={REGRESSION: BaselineMetric(value=female_share)}, labels={},
        )  # fmt: skip

    def exact_p(self, category: str, female: int, n: int) -> float:
        """For comparison: the exact binomial p-value of "the majority's share is at most its labour share"
        (the most powerful test of one two-group category; not the package's)."""
        ref = self.truth[category]
        major = max(ref, key=lambda g: ref[g])
        k = female if major == "female" else n - female
        return binomial_tail(k, n, ref[major], upper=True)


def rate(hits: int, runs: int) -> str:
    iv = wilson_interval(hits, max(runs, 1))
    return f"{100 * hits / max(runs, 1):5.1f}% [{100 * iv.low:4.1f}, {100 * iv.high:4.1f}]"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="runs per row (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="master seed of every draw")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 30 runs per row")
    args = parser.parse_args(argv)
    runs = 30 if args.quick and args.runs == 1000 else args.runs
    start = time.perf_counter()
    bench = Bench()
    eligible = [c for c in bench.names if amplified(bench.suite, c, SHIFT) is not None]
    print(
        f"synthetic model, suite occupations, {len(bench.names)} occupations at their BLS 2022 shares of women, "
        f"policy {POLICY.name} (Holm, alpha {bench.policy.alpha}, {len(bench.names) + 1} fail-level checks per "
        f"run: {METRIC} <= bound per occupation, {AGGREGATE} <= {bench.aggregate_max}); {runs} runs per row, "
        f"seed {args.seed}"
    )
    print("[ ]: 95% Wilson interval over the runs")

    null_fail = null_agg = null_exact = 0
    by = Counter[str]()
    for r in range(runs):
        rng = np.random.default_rng([args.seed, zlib.crc32(b"null"), r])
        failed, agg, failing, exact_failing = bench.run(rng, 100, None)
        null_fail += failed
        null_agg += agg
        null_exact += bool(exact_failing)
        by.update(failing)
    print(f"\n1. false failures per full-suite run, n = 100 per occupation (target <= 1%): {rate(null_fail, runs)}")
    if by:
        print("   failing: " + ", ".join(f"{k} x{v}" for k, v in by.most_common(5)))

    caught = caught_agg = caught_exact = 0
    missed = Counter[str]()
    for r in range(runs):
        rng = np.random.default_rng([args.seed, zlib.crc32(b"power"), r])
        shifted = eligible[int(rng.integers(len(eligible)))]
        failed, agg, failing, exact_failing = bench.run(rng, 200, shifted)
        caught += shifted in failing
        caught_exact += shifted in exact_failing
        caught_agg += agg
        if shifted not in failing:
            missed[shifted] += 1
    print(
        f"\n2. power, one of {len(eligible)} occupations (with room) amplified by {SHIFT * 100:.0f} points, "
        f"n = 200 per occupation (target >= 90%): {rate(caught, runs)}"
    )
    print(f"   occupations without room for +{SHIFT * 100:.0f} points: {sorted(set(bench.names) - set(eligible))}")
    if missed:
        print("   missed: " + ", ".join(f"{k} x{v}" for k, v in missed.most_common(8)))
    print(
        f"\n3. the aggregate check ({AGGREGATE} <= {bench.aggregate_max}) failed in {rate(null_agg, runs)} of "
        f"row 1's runs and {rate(caught_agg, runs)} of row 2's"
    )
    print(
        "\n4. for comparison, an exact one-sided binomial test of each occupation's majority share (the most "
        f"powerful test for two groups) in the same Holm family: false failures {rate(null_exact, runs)}, "
        f"power {rate(caught_exact, runs)}"
    )
    drift_fail = drift_agg = 0
    for r in range(runs):
        rng = np.random.default_rng([args.seed, zlib.crc32(b"drift"), r])
        failed, agg, failing, _ = bench.run(rng, 100, None, DRIFT)
        drift_fail += failed
        drift_agg += agg
    print(
        f"\n5. every occupation with room amplified by {DRIFT * 100:.0f} points, n = 100 per occupation: the run "
        f"fails {rate(drift_fail, runs)}, the aggregate check {rate(drift_agg, runs)}"
    )
    policy = with_baseline(bench.suite)
    base_runs = runs // 3 if args.quick else runs  # a paired test per occupation: the slow rows
    base_null = Counter[str]()
    base_null_runs = 0
    for r in range(base_runs):
        rng = np.random.default_rng([args.seed, zlib.crc32(b"baseline null"), r])
        failing = bench.run_vs_baseline(rng, 100, None, policy)
        base_null_runs += bool(failing)
        base_null.update(failing)
    base_caught = 0
    base_missed = Counter[str]()
    for r in range(base_runs):
        rng = np.random.default_rng([args.seed, zlib.crc32(b"baseline power"), r])
        shifted = eligible[int(rng.integers(len(eligible)))]
        failing = bench.run_vs_baseline(rng, 200, shifted, policy)
        base_caught += shifted in failing
        if shifted not in failing:
            base_missed[shifted] += 1
    print(
        f"\n6. with an approved baseline ({REGRESSION} regression allowed {ALLOWED} per occupation, "
        f"{REDRAW:.0%} of the images re-drawn, {2 * len(bench.names) + 1} fail-level checks per run, bounds "
        f"at {policy.bounds_alpha} of alpha):\n"
        f"   false failures per run, nothing changed, n = 100 (target <= 1%): {rate(base_null_runs, base_runs)}"
    )
    if base_null:
        print("   failing: " + ", ".join(f"{k} x{v}" for k, v in base_null.most_common(5)))
    print(
        f"   power, one of {len(eligible)} occupations amplified by {SHIFT * 100:.0f} points, n = 200 "
        f"(target >= 90%): {rate(base_caught, base_runs)}"
    )
    if base_missed:
        print("   missed: " + ", ".join(f"{k} x{v}" for k, v in base_missed.most_common(8)))
    print(f"\n{runs} runs per row ({base_runs} in row 6) in {time.perf_counter() - start:.0f} s")
    report = {
        "false_fail": null_fail / runs,
        "power": caught / runs,
        "false_fail_baseline": base_null_runs / base_runs,
        "power_baseline": base_caught / base_runs,
        "runs": runs,
    }
    print(
        f"RESULT false_fail_40cats={100 * report['false_fail']:.1f} power15_one_of_40={100 * report['power']:.1f} "
        f"false_fail_40cats_baseline={100 * report['false_fail_baseline']:.1f} "
        f"power15_one_of_40_baseline={100 * report['power_baseline']:.1f}"
    )
    return report


if __name__ == "__main__":
    main()
