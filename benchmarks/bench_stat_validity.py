"""Statistical validity of the gate: false failures, power and images needed, our rule against the naive one.

    python benchmarks/bench_stat_validity.py [--runs 500] [--boot 1000] [--quick]

Simulated on the synthetic model (labels and present terms drawn by ``SyntheticGenerator.draw``, no image
rendered), with the shipped policy ``thresholds/t2i-biasbench.yaml`` (its fail-level rules only: warn-level
rules never fail a build) in strict mode. A run fails when any fail-level check of any simulated category
fails. Side by side:

* **ours**: the package's verdict rule, through its own ``judge_bounds`` / ``judge_regressions``: a bound
  fails only when the whole interval (percentile bootstrap, Wilson for shares of images) is beyond it; a
  regression only when the worsening is beyond the allowed regression and the paired test (exact McNemar
  for per-image binary outcomes, paired bootstrap with an SE-based p-value otherwise) is significant after
  Holm across every fail-level regression check of the run.
* **naive**: the point estimate beyond a bound, or worse than the baseline by more than the tolerance.

Rows: (1) false-failure rate when baseline and candidate are two models with the same distribution (the
candidate's images drawn from an independent seed stream, its records given the baseline's seeds so they
pair), the whole suite at its 100 images per prompt, for the default synthetic model (uniform over the
declared groups) and for a skewed, paper-like model whose population values sit inside the bounds
(target <= 1% for ours); (2) power against doctor male 0.50 -> 0.65 at 200 images per category (the
synthetic model's coupling flips only the seeds whose uniform falls in the shifted band; target >= 90%);
(3) the images per category our rule needs for 90% power at 0.50 -> 0.60, by simulation over a grid of n
(each run's images are the first n of one sequence, as the seed plan makes them; the search stops two grid
points after both rules reach 90%), beside the analytic ``stats.images_for_power``; (4) a change within
the allowed regression (0.50 -> 0.54: parity +0.08 of the 0.10 allowed) for reference. Rows 3 and 4
simulate the doctor category only: the unchanged categories' images are identical in baseline and
candidate, so their comparisons enter Holm with p = 1 (row 2, simulated in full, asserts it).

Speed: the bootstrap is vectorised. Per category and n the package resamples with
``default_rng(suite.seed).integers(0, n, size=n)`` per replicate, the same index matrix for every metric
and every run; here that matrix becomes a (B, n) matrix of multiplicities W, and W @ F (F: per-image
one-hot labels, any-term and term-coverage columns) gives every replicate's counts at once. With the
package's B (1000) the replicates are the package's own, so p-values and intervals are its own up to float
rounding; the run starts by checking that against ``compute_category``, ``compare_metric`` and
``bootstrap_intervals``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.baseline import BaselineMetric, BaselineRecord
from pytest_t2ibias.compare import N_PAIRED_BOOT, Comparison, with_margin
from pytest_t2ibias.gate import comparisons_for
from pytest_t2ibias.generate.seeds import image_seed
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge import Check, judge_bounds, judge_regressions, worsening
from pytest_t2ibias.metrics.association import CAS_EPS
from pytest_t2ibias.metrics.engine import category_data, compute_category, metric_ids
from pytest_t2ibias.metrics.registry import CategoryData
from pytest_t2ibias.policy import MetricRule, Policy, load_policy
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.result import N_BOOT, CategoryResult, MetricEstimate
from pytest_t2ibias.stats import (
    PROPORTION_METRICS,
    Interval,
    bootstrap_intervals,
    holm,
    images_for_power,
    mcnemar_exact,
    wilson_interval,
)
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

ROOT = Path(__file__).resolve().parents[1]
MODE = "strict"
CONFIDENCE = 0.95  # of the metric intervals (bootstrap_intervals' default)
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


# -- vectorised metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each per-image feature of one category sits in its feature matrix F (images x columns).

    Columns: the one-hot label over the declared groups then ``unknown`` (strict mode), then per term list
    an any-term indicator and the fraction of its terms present.
    """

    category: str
    spec: Any
    groups: tuple[str, ...]
    lists: tuple[str, ...]

    @classmethod
    def of(cls, suite: Suite, category: str) -> Layout:
        spec = suite.categories[category]
        attribute = suite.attribute_of(category)
        groups = tuple(attribute.groups) if attribute is not None else ()
        return cls(category, spec, groups, tuple(spec.list_names()))

    @property
    def k(self) -> int:
        return len(self.groups)

    @property
    def n_label_cols(self) -> int:
        return self.k + 1 if self.groups else 0

    def any_col(self, list_name: str) -> int:
        return self.n_label_cols + 2 * self.lists.index(list_name)

    def cov_col(self, list_name: str) -> int:
        return self.any_col(list_name) + 1

    @property
    def width(self) -> int:
        return self.n_label_cols + 2 * len(self.lists)

    def features(self, data: CategoryData) -> NDArray[np.float64]:
        """F for one category's data (strict mode: a label outside the declared groups is unknown)."""
        assert data.mode == MODE, "the vectorised metrics implement strict mode"
        n = data.n
        out = np.zeros((n, self.width))
        if self.groups:
            index = {g: i for i, g in enumerate(self.groups)}
            codes = np.array([index.get(label, self.k) for label in data.labels], dtype=np.intp)
            out[np.arange(n), codes] = 1.0
        for name in self.lists:
            matrix = data.present[name]
            out[:, self.any_col(name)] = matrix.any(axis=1)
            out[:, self.cov_col(name)] = matrix.mean(axis=1)
        return out

    def columns(self, metric_ids: Sequence[str]) -> tuple[list[int], bool]:
        """The columns of F that ``metric_ids`` read, and whether all of them are whole numbers (counts)."""
        attribute_based = {"entropy", "entropy_normalized", "bias_amplification", "kl_divergence", "unique_count"}
        attribute_based |= {"unknown_rate", "parity_difference", "composite", *self.spec.shares}
        cols: set[int] = set()
        fractional = False
        for metric_id in metric_ids:
            if metric_id in attribute_based and self.groups:
                cols.update(range(self.n_label_cols))
            if metric_id == "cas" or (metric_id == "composite" and "cas" in self.spec.metrics):
                cols.update(self.any_col(name) for name in ("cas_stereotype", "cas_diverse") if name in self.lists)
            lists = {"gmr": "explicit", "iemr": "implied", "clip_proxy": "keywords"}
            if metric_id in lists and lists[metric_id] in self.lists:
                cols.add(self.cov_col(lists[metric_id]))
                fractional = True
            anys = {"hallucination": "unexpected", "car": "cultural_markers"}
            name = anys.get(metric_id, metric_id[: -len("_ratio")] if metric_id.endswith("_ratio") else None)
            if name is not None and name in self.lists:
                cols.add(self.any_col(name))
        return sorted(cols), not fractional

    def supported(self) -> list[str]:
        """The engine's scalar metric ids of this category that :meth:`metrics` computes."""
        ids = []
        for metric_id in metric_ids(self.spec, MODE):
            if metric_id in ("representation_parity", "vendi"):
                continue  # a distribution (checked through its shares); captions (none here)
            ids.append(metric_id)
        return ids

    def metrics(self, sums: NDArray[np.float64], n: int) -> dict[str, NDArray[np.float64]]:
        """Every supported metric of each row of ``sums`` (= W @ F, rows of W summing to n); NaN: unavailable.

        Strict-mode semantics of ``metrics/catalog.py``: shares over the declared groups with unknown apart,
        entropy in bits, normalised by log2 k of the declared groups, bias amplification, signed parity
        (``distribution.signed_parity``, rounded to 12 decimals like it), CAS (unavailable without a
        mention), the composite (mean of 1 - H_norm, |PD| and CAS over the terms that exist).
        """
        spec = self.spec
        rows = sums.shape[0]
        out: dict[str, NDArray[np.float64]] = {}
        if self.groups:
            k = self.k
            counts = sums[:, :k]
            known = counts.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                p = counts / known[:, None]  # NaN rows: every label unknown -> distribution unavailable
                logs = np.log2(np.where(p > 0, p, 1.0))
                lns = np.log(np.where(p > 0, p * k, 1.0))
            entropy = -np.where(p > 0, p * logs, 0.0).sum(axis=1) + 0.0
            entropy[~(known > 0)] = np.nan
            out["entropy"] = entropy
            out["entropy_normalized"] = entropy / float(np.log2(k)) if k > 1 else np.where(known > 0, 0.0, np.nan)
            out["bias_amplification"] = np.abs(p - 1.0 / k).sum(axis=1)
            out["kl_divergence"] = np.where(p > 0, p * lns, 0.0).sum(axis=1) + 0.0
            out["kl_divergence"][~(known > 0)] = np.nan
            out["unique_count"] = np.where(known > 0, (p > 0).sum(axis=1).astype(np.float64), np.nan)
            out["unknown_rate"] = sums[:, k] / n
            for share_id, group in spec.shares.items():
                out[share_id] = (
                    p[:, self.groups.index(group)] if group in self.groups else np.where(known > 0, 0.0, np.nan)
                )
            for g, group in enumerate(self.groups):
                out[f"share:{group}"] = p[:, g]
            if spec.parity is not None:
                out["parity_difference"] = self._signed_parity(p)
            gap = 1.0 - out["entropy_normalized"]
            total = gap.copy()
            terms = np.ones(rows)
            if "parity_difference" in spec.metrics:
                total = total + np.abs(out["parity_difference"])
                terms += 1
        for name in self.lists:
            any_rate, coverage = sums[:, self.any_col(name)] / n, sums[:, self.cov_col(name)] / n
            if name == "explicit":
                out["gmr"] = 1.0 - coverage
            elif name == "implied":
                out["iemr"] = 1.0 - coverage
            elif name == "keywords":
                out["clip_proxy"] = coverage
            elif name == "unexpected":
                out["hallucination"] = any_rate
            elif name == "cultural_markers":
                out["car"] = any_rate
            elif name in spec.context:
                out[f"{name}_ratio"] = any_rate
        if "cas_stereotype" in self.lists and "cas_diverse" in self.lists:
            s = sums[:, self.any_col("cas_stereotype")]
            d = sums[:, self.any_col("cas_diverse")]
            out["cas"] = np.where((s > 0) | (d > 0), s / (s + d + CAS_EPS), np.nan)
        if self.groups:
            if "cas" in spec.metrics and "cas" in out:
                has_cas = np.isfinite(out["cas"])
                total = np.where(has_cas, total + np.where(has_cas, out["cas"], 0.0), total)
                terms = terms + has_cas
            out["composite"] = total / terms
        return out

    def _signed_parity(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        split = self.spec.parity
        a = [self.groups.index(g) for g in split.a if g in self.groups]
        p_a = p[:, a].sum(axis=1) if a else np.zeros(p.shape[0])
        if split.b == "rest":
            p_b = 1.0 - p_a
            reference = self.spec.reference or {g: 1.0 / self.k for g in self.groups}
            r_a = sum(reference.get(g, 0.0) for g in split.a)
            r_b = 1.0 - r_a
        else:
            b = [self.groups.index(g) for g in split.b if g in self.groups]
            p_b = p[:, b].sum(axis=1) if b else np.zeros(p.shape[0])
            reference = self.spec.reference or {g: 1.0 / self.k for g in self.groups}
            r_a = sum(reference.get(g, 0.0) for g in split.a)
            r_b = sum(reference.get(g, 0.0) for g in split.b)
        if r_a <= 0 or r_b <= 0:
            return np.full(p.shape[0], np.nan)
        rho = r_a / (r_a + r_b)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = p_a / (p_a + p_b)
            value = np.where(q >= rho, (q - rho) / (1 - rho), (q - rho) / rho)
        value[~(p_a + p_b > 0)] = np.nan
        return np.round(value, 12) + 0.0

    def indicator_col(self, metric_id: str, all_known: bool) -> int | None:
        """The column whose per-image value is the metric's binary outcome (``compare._indicator``)."""
        if metric_id == "unknown_rate" and self.groups:
            return self.k
        if metric_id == "hallucination" and "unexpected" in self.lists:
            return self.any_col("unexpected")
        if metric_id == "car" and "cultural_markers" in self.lists:
            return self.any_col("cultural_markers")
        if metric_id.endswith("_ratio") and metric_id[: -len("_ratio")] in self.spec.context:
            return self.any_col(metric_id[: -len("_ratio")])
        if metric_id in self.spec.shares and self.groups and all_known:
            group = self.spec.shares[metric_id]
            return self.groups.index(group) if group in self.groups else None
        return None


_WEIGHTS: dict[tuple[int, int, int, str], NDArray[Any]] = {}


def weights(n: int, n_boot: int, seed: int, dtype: type = np.float64) -> NDArray[Any]:
    """(B, n) multiplicities of the package's bootstrap replicates (``paired_bootstrap``, ``bootstrap_intervals``).

    Both draw ``rng.integers(0, n, size=n)`` per replicate from ``default_rng(seed)``, which equals one
    ``rng.integers(0, n, size=(B, n))`` draw (checked by :func:`check_against_engine`).
    """
    key = (n, n_boot, seed, np.dtype(dtype).name)
    if key not in _WEIGHTS:
        index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
        flat = (np.arange(n_boot)[:, None] * n + index).ravel()
        _WEIGHTS[key] = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(dtype)
    return _WEIGHTS[key]


def replicate_sums(
    layout: Layout, cols: Sequence[int], exact32: bool, n_boot: int, seed: int, *features: NDArray[np.float64]
) -> list[NDArray[np.float64]]:
    """W @ F of each feature matrix (same images, same replicates), over the columns the gated metrics read.

    One matrix product for all of them; float32 when every column is a count (exact below 2**24).
    """
    n = features[0].shape[0]
    dtype = np.float32 if exact32 and n < 2**24 else np.float64
    stacked = np.hstack([f[:, cols] for f in features]).astype(dtype)
    product = (weights(n, n_boot, seed, dtype) @ stacked).astype(np.float64)
    out = []
    for i in range(len(features)):
        sums = np.zeros((n_boot, layout.width))
        sums[:, cols] = product[:, i * len(cols) : (i + 1) * len(cols)]
        out.append(sums)
    return out


def se_p_value(observed: float, deltas: NDArray[np.float64]) -> float:
    """``stats.paired_bootstrap``'s p-value: two-sided normal test of the observed change with the bootstrap SE."""
    se = float(deltas.std(ddof=1))
    if se == 0:
        return 1.0 if observed == 0 else 0.0
    return 2 * (1 - NormalDist().cdf(abs(observed) / se))


def percentile_interval(values: NDArray[np.float64], n_boot: int) -> Interval | None:
    """``stats.bootstrap_intervals``' interval from one metric's replicates (NaN: unavailable replicate)."""
    kept = values[np.isfinite(values)]
    if len(kept) < n_boot / 2:
        return None
    alpha = 1 - CONFIDENCE
    low, high = np.quantile(kept, [alpha / 2, 1 - alpha / 2])
    return Interval(float(low), float(high), "bootstrap", CONFIDENCE)


# -- the gate, applied with the package's own judge -------------------------------------------------------


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
    layouts: dict[str, Layout]
    n_pair_boot: int
    n_iv_boot: int
    suite_hash: str = ""
    _bounded: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def make(cls, suite: Suite, policy: Policy, n_boot: int | None) -> Context:
        rules = {c: fail_rules(policy, suite, c) for c in suite.categories}
        layouts = {c: Layout.of(suite, c) for c in suite.categories}
        for category, ruled in rules.items():
            missing = [m for m in ruled if m not in layouts[category].supported()]
            if missing:
                raise NotImplementedError(f"{category}: no vectorised version of gated metrics {missing}")
        return cls(suite, policy, rules, layouts, n_boot or N_PAIRED_BOOT, n_boot or N_BOOT, suite.fingerprint())

    def family_size(self, category: str) -> int:
        return sum(1 for r in self.rules[category].values() if r.regression is not None)

    def evaluate(self, category: str, base_f: NDArray[np.float64], cand_f: NDArray[np.float64]) -> CategoryEval:
        """Point values, candidate intervals and paired comparisons of the gated metrics, vectorised."""
        layout, rules, seed = self.layouts[category], self.rules[category], self.suite.seed
        n = base_f.shape[0]
        point_b = layout.metrics(base_f.sum(axis=0, keepdims=True), n)
        point_c = layout.metrics(cand_f.sum(axis=0, keepdims=True), n)
        cols, exact32 = layout.columns(list(rules))
        sums_b, sums_c = replicate_sums(layout, cols, exact32, self.n_pair_boot, seed, base_f, cand_f)
        boot_b, boot_c = layout.metrics(sums_b, n), layout.metrics(sums_c, n)
        if self.n_iv_boot == self.n_pair_boot:
            boot_iv = boot_c
        else:
            boot_iv = layout.metrics(replicate_sums(layout, cols, exact32, self.n_iv_boot, seed, cand_f)[0], n)
        all_known = bool(layout.groups) and base_f[:, layout.k].sum() == 0 and cand_f[:, layout.k].sum() == 0

        ours: dict[str, MetricEstimate] = {}
        naive: dict[str, MetricEstimate] = {}
        stored: dict[str, BaselineMetric] = {}
        comparisons: dict[str, Comparison] = {}
        deltas: dict[str, float] = {}
        for metric_id, rule in rules.items():
            value_c, value_b = float(point_c[metric_id][0]), float(point_b[metric_id][0])
            ok_c, ok_b = math.isfinite(value_c), math.isfinite(value_b)
            interval = None
            if ok_c and metric_id in PROPORTION_METRICS:
                interval = wilson_interval(round(value_c * n), n)
            elif ok_c:
                interval = percentile_interval(boot_iv[metric_id], self.n_iv_boot)
            reason = None if ok_c else "unavailable"
            ours[metric_id] = MetricEstimate(value_c if ok_c else None, interval, reason)
            naive[metric_id] = MetricEstimate(value_c if ok_c else None, None, reason)
            stored[metric_id] = BaselineMetric(value=value_b if ok_b else None)
            if rule.regression is None or not (ok_b and ok_c):
                continue  # compare_metric raises on a missing value; judge_regressions reports it
            deltas[metric_id] = value_c - value_b
            col = layout.indicator_col(metric_id, all_known)
            if col is not None:
                base_ind, cand_ind = base_f[:, col] > 0.5, cand_f[:, col] > 0.5
                p, b, c = mcnemar_exact(base_ind, cand_ind)
                delta_pairs = float(cand_ind.mean() - base_ind.mean())
                comparisons[metric_id] = Comparison(metric_id, delta_pairs, p, "mcnemar", n, None, (b + c) / n)
                continue
            draws = boot_c[metric_id] - boot_b[metric_id]
            kept = draws[np.isfinite(draws)]
            if len(kept) < self.n_pair_boot / 2:
                continue  # paired_bootstrap raises: no comparison, the judge says inconclusive
            observed = value_c - value_b
            p = se_p_value(observed, kept)
            low, high = np.quantile(kept, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
            se = float(kept.std(ddof=1))
            iv = Interval(float(low), float(high), "paired bootstrap", CONFIDENCE)
            comparisons[metric_id] = Comparison(metric_id, observed, p, "paired bootstrap", n, iv, None, se)

        for metric_id, comparison in list(comparisons.items()) if self.policy.margin_test else []:
            # the package's margin test, exactly as gate.comparisons_for applies it
            value_c, value_b = float(point_c[metric_id][0]), float(point_b[metric_id][0])
            regression = rules[metric_id].regression
            assert regression is not None
            worse_by = worsening(metric_id, MODE, value_c, value_b)
            comparisons[metric_id] = with_margin(comparison, worse_by, regression.allowed(value_b))

        def result(metrics: dict[str, MetricEstimate]) -> CategoryResult:
            return CategoryResult(
                category,
                self.suite.name,
                self.suite_hash,
                MODE,
                "synthetic",
                "synthetic",
                n,
                metrics,
                seed=seed,
                images_per_prompt=n,
            )

        baseline = BaselineRecord(
            package_version="bench",
            suite=self.suite.name,
            suite_hash=self.suite_hash,
            category=category,
            mode=MODE,
            model="synthetic",
            scorer="synthetic",
            n=n,
            seed=seed,
            images_per_prompt=n,
            metrics=stored,
            labels={},
        )
        return CategoryEval(category, result(ours), result(naive), baseline, comparisons, deltas)

    def judge(self, evals: Sequence[CategoryEval], extra_p: Sequence[float] = ()) -> tuple[list[Check], list[Check]]:
        """Both rules' checks of one run. Ours: Holm across every fail-level comparison of the run
        (``extra_p``: those of categories not simulated); naive: no test, the point change decides."""
        keys = [(e.category, m) for e in evals for m in e.comparisons]
        raw = [e.comparisons[m].p_value for e in evals for m in e.comparisons]
        corrected = holm([*raw, *extra_p]) if self.policy.correction == "holm" else [*raw, *extra_p]
        adjusted: dict[str, dict[str, float]] = {e.category: {} for e in evals}
        for (category, metric_id), value in zip(keys, corrected, strict=False):
            adjusted[category][metric_id] = value
        ours: list[Check] = []
        naive: list[Check] = []
        alpha = self.policy.alpha
        for e in evals:
            rules = self.rules[e.category]
            reg = {m: r for m, r in rules.items() if r.regression is not None}
            ours += judge_bounds(e.ours, rules)
            ours += judge_regressions(e.ours, e.baseline, reg, e.comparisons, adjusted[e.category], alpha)
            point = {m: Comparison(m, d, 0.0, "point", e.ours.n) for m, d in e.deltas.items()}
            naive += judge_bounds(e.naive, rules)
            naive += judge_regressions(e.naive, e.baseline, reg, point, dict.fromkeys(point, 0.0), alpha)
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


def draw_records(
    generator: SyntheticGenerator, category: str, draw_seeds: Sequence[int], record_seeds: Sequence[int]
) -> list[ImageRecord]:
    """Records straight from the synthetic model's ground truth; ``record_seeds`` pair them with a baseline."""
    records = []
    for i, (drawn, seed) in enumerate(zip(draw_seeds, record_seeds, strict=True)):
        truth = generator.draw(category, drawn)
        records.append(
            ImageRecord(
                image_id=f"{category}-{i}", category=category, labels=truth.labels, present=truth.present, seed=seed
            )
        )
    return records


def run_pair(
    ctx: Context,
    base: SyntheticGenerator,
    cand: SyntheticGenerator,
    category: str,
    n: int,
    run_id: tuple[object, ...],
    coupled: bool,
    start: int = 0,
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Images ``start``..n-1 of one category's baseline and candidate: the candidate on the baseline's own
    seeds (``coupled``: a model changed a little) or on an independent stream (a retrained model)."""
    base_seeds = seeds_for(stream(*run_id, "baseline"), category, n, start)
    cand_seeds = base_seeds if coupled else seeds_for(stream(*run_id, "candidate"), category, n, start)
    return draw_records(base, category, base_seeds, base_seeds), draw_records(cand, category, cand_seeds, base_seeds)


def features(ctx: Context, category: str, records: Sequence[ImageRecord]) -> NDArray[np.float64]:
    return ctx.layouts[category].features(category_data(ctx.suite, category, records, MODE))


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
            base_records, cand_records = run_pair(ctx, base, cand, category, n, (tag, r), coupled)
            evals.append(
                ctx.evaluate(category, features(ctx, category, base_records), features(ctx, category, cand_records))
            )
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
    base_f: list[NDArray[np.float64]] = [np.zeros((0, ctx.layouts[category].width))] * runs
    cand_f = list(base_f)
    per_n: dict[int, Rates] = {}
    reached: dict[str, int | None] = {"ours": None, "naive": None}
    for n in sorted(grid):
        rates = per_n[n] = Rates()
        for r in range(runs):
            drawn = len(base_f[r])
            if drawn < n:
                new_base, new_cand = run_pair(ctx, base, cand, category, n, (tag, r), True, start=drawn)
                base_f[r] = np.vstack([base_f[r], features(ctx, category, new_base)])
                cand_f[r] = np.vstack([cand_f[r], features(ctx, category, new_cand)])
            rates.add(*ctx.judge([ctx.evaluate(category, base_f[r][:n], cand_f[r][:n])], extra))
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


# -- the check against the engine ---------------------------------------------------------------------------


@dataclass
class CheckSummary:
    metric_values: int = 0
    max_metric_diff: float = 0.0
    p_values: int = 0
    max_p_rel_diff: float = 0.0
    intervals: int = 0
    max_interval_diff: float = 0.0
    methods: Counter[str] = field(default_factory=Counter)
    b_effect: list[float] = field(default_factory=list)  # |z(B) / z(package B) - 1| at the benchmark's B

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}


def _scalar(value: object) -> float:
    return float(value) if isinstance(value, float | int) else math.nan


def engine_result(
    ctx: Context, category: str, metrics: Mapping[str, Any], records: list[ImageRecord]
) -> CategoryResult:
    """A candidate result as the plugin builds it, from the engine's values (intervals are not needed here)."""
    n = len(records)
    estimates = {m: MetricEstimate(v) for m, v in metrics.items()}
    return CategoryResult(
        category,
        ctx.suite.name,
        ctx.suite_hash,
        MODE,
        "synthetic",
        "synthetic",
        n,
        estimates,
        records,
        ctx.suite.seed,
        n,
    )


def check_against_engine(
    ctx: Context,
    cases: Sequence[tuple[SyntheticGenerator, SyntheticGenerator, bool]],
    n: int,
    categories: Sequence[str] | None = None,
    compare: bool = True,
    intervals: bool = True,
    tag: object = "check",
) -> CheckSummary:
    """Assert that the vectorised metrics are the engine's, and the vectorised tests the package's.

    On the observed data of each case (base generator, candidate generator, coupled) and category:
    every supported metric equals ``compute_category`` to 1e-12 (shares against ``representation_parity``);
    with the package's B, each gated comparison has ``compare_metric``'s method and p-value (within 5%,
    or 1e-12 absolute) and the candidate's intervals are ``bootstrap_intervals``' (1e-9).
    """
    summary = CheckSummary()
    index = np.random.default_rng(ctx.suite.seed)
    looped = np.stack([index.integers(0, n, size=n) for _ in range(8)])
    assert np.array_equal(looped, np.random.default_rng(ctx.suite.seed).integers(0, n, size=(8, n))), (
        "rng.integers per replicate no longer equals one (B, n) draw: weights() must loop"
    )
    exact = Context(ctx.suite, ctx.policy, ctx.rules, ctx.layouts, N_PAIRED_BOOT, N_BOOT, ctx.suite_hash)
    for case, (base, cand, coupled) in enumerate(cases):
        for category in categories or list(ctx.suite.categories):
            layout = ctx.layouts[category]
            base_records, cand_records = run_pair(ctx, base, cand, category, n, (tag, case), coupled)
            for records in (base_records, cand_records):
                engine = compute_category(ctx.suite, category, records, MODE).metrics
                f = features(ctx, category, records)
                mine = layout.metrics(f.sum(axis=0, keepdims=True), n)
                for metric_id in layout.supported():
                    expected, got = _scalar(engine[metric_id]), float(mine[metric_id][0])
                    if math.isnan(expected) or math.isnan(got):
                        assert math.isnan(expected) and math.isnan(got), (category, metric_id, expected, got)
                        continue
                    diff = abs(expected - got)
                    assert diff <= 1e-12, f"{category}.{metric_id}: engine {expected!r}, vectorised {got!r}"
                    summary.metric_values += 1
                    summary.max_metric_diff = max(summary.max_metric_diff, diff)
                shares = engine.get("representation_parity")
                if isinstance(shares, dict):
                    for group, share in shares.items():
                        diff = abs(share - float(mine[f"share:{group}"][0]))
                        assert diff <= 1e-12, (category, group, share)
                        summary.metric_values += 1
            if not (compare or intervals) or not ctx.rules[category]:
                continue
            base_f, cand_f = features(ctx, category, base_records), features(ctx, category, cand_records)
            e = exact.evaluate(category, base_f, cand_f)
            if intervals:
                data = category_data(ctx.suite, category, cand_records, MODE)
                package = bootstrap_intervals(data, N_BOOT, seed=ctx.suite.seed, metrics=list(ctx.rules[category]))
                for metric_id, estimate in e.ours.metrics.items():
                    if metric_id in PROPORTION_METRICS or estimate.interval is None:
                        continue
                    theirs = package[metric_id]
                    diff = max(abs(theirs.low - estimate.interval.low), abs(theirs.high - estimate.interval.high))
                    assert diff <= 1e-9, f"{category}.{metric_id}: interval {estimate.interval} vs {theirs}"
                    summary.intervals += 1
                    summary.max_interval_diff = max(summary.max_interval_diff, diff)
            if not compare:
                continue
            base_metrics = compute_category(ctx.suite, category, base_records, MODE)
            cand_metrics = compute_category(ctx.suite, category, cand_records, MODE)

            stored = BaselineRecord.from_result(engine_result(ctx, category, base_metrics.metrics, base_records))
            result = engine_result(ctx, category, cand_metrics.metrics, cand_records)
            mine_b = ctx.evaluate(category, base_f, cand_f) if ctx.n_pair_boot != N_PAIRED_BOOT else e
            for metric_id, comparison in e.comparisons.items():
                rule = {metric_id: ctx.rules[category][metric_id]}
                theirs = comparisons_for(ctx.suite, result, stored, rule, ctx.policy.margin_test)[metric_id]
                assert theirs.method == comparison.method, (category, metric_id, theirs.method, comparison.method)
                diff = abs(theirs.p_value - comparison.p_value)
                assert diff <= 0.05 * theirs.p_value + 1e-12, (
                    f"{category}.{metric_id}: compare_metric p={theirs.p_value!r}, vectorised p={comparison.p_value!r}"
                )
                summary.p_values += 1
                summary.methods[comparison.method] += 1
                if theirs.p_value > 1e-12:
                    summary.max_p_rel_diff = max(summary.max_p_rel_diff, diff / theirs.p_value)
                ours_b = mine_b.comparisons.get(metric_id)
                if comparison.se and ours_b is not None and ours_b.se:
                    summary.b_effect.append(abs(comparison.se / ours_b.se - 1))
    return summary


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


def population_values(ctx: Context, generator: SyntheticGenerator, category: str) -> dict[str, float]:
    """The gated metrics at the model's own distribution (expected counts instead of sampled ones)."""
    layout = ctx.layouts[category]
    model = generator._models[category]  # the resolved distribution the draws follow
    sums = np.zeros((1, layout.width))
    if layout.groups:
        sums[0, : layout.k + 1] = np.diff(np.concatenate([[0.0], model.cdfs[0]]))
    start = 0
    for (name, terms), _ in zip(model.layout.lists, layout.lists, strict=True):
        probs = model.presence[start : start + len(terms)]
        start += len(terms)
        sums[0, layout.any_col(name)] = 1.0 - float(np.prod(1.0 - probs))
        sums[0, layout.cov_col(name)] = float(probs.mean())
    values = layout.metrics(sums, 1)
    return {m: float(values[m][0]) for m in ctx.rules[category] if m in values}


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
    parser.add_argument("--check-runs", type=int, default=2, help="runs checked against the engine (0: skip)")
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
        args.check_runs = min(args.check_runs, 1)
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
    doctor = {"male": 0.5, "female": 0.5}
    assert uniform.draw("doctor", 1) == uniform.with_probabilities("doctor", doctor).draw("doctor", 1)

    def shifted(male: float) -> SyntheticGenerator:
        return uniform.with_probabilities("doctor", {"male": male, "female": round(1 - male, 10)})

    report: dict[str, Any] = {"runs": runs, "boot": ctx.n_pair_boot, "n": n_suite}
    family = sum(ctx.family_size(c) for c in suite.categories)
    hard = sum((r.min is not None) + (r.max is not None) for rules in ctx.rules.values() for r in rules.values())
    print(
        f"synthetic model, suite {suite.name} ({len(suite.categories)} categories), policy {args.policy.name}, "
        f"{MODE} mode: fail-level rules only, {family} regression checks (Holm, alpha {policy.alpha}), "
        f"{hard} hard bounds"
    )
    print(
        f"{runs} runs per row, B = {ctx.n_pair_boot} paired / {ctx.n_iv_boot} interval bootstrap replicates "
        f"(package: {N_PAIRED_BOOT} / {N_BOOT}), image streams seeded from {args.seed}"
    )

    if args.check_runs > 0:
        cases = [(uniform, uniform, False)] * args.check_runs + [(uniform, shifted(0.65), True)]
        check = check_against_engine(ctx, cases, n_suite, tag=("check", args.seed))
        report["check"] = check.as_dict()
        b_note = (
            f"; at B={ctx.n_pair_boot} the bootstrap SE is within {100 * max(check.b_effect, default=0):.0f}% "
            "of the package's"
            if ctx.n_pair_boot != N_PAIRED_BOOT
            else ""
        )
        print(
            f"check vs the engine ({len(cases)} runs x {len(suite.categories)} categories, n={n_suite}): "
            f"{check.metric_values} metric values, max |vectorised - compute_category| = {check.max_metric_diff:.1e}; "
            f"{check.p_values} comparisons ({dict(check.methods)}), max relative p-value difference to compare_metric "
            f"{check.max_p_rel_diff:.1e}; {check.intervals} intervals, max difference to bootstrap_intervals "
            f"{check.max_interval_diff:.1e}{b_note}"
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
