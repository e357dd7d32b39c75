"""Candidate vs. baseline, image by image: which test `compare_metric` picks, and what it returns.

Baseline and candidate are two configurations of the synthetic model drawn on the same seeds, so image i
of each is a pair (see the coupling in `pytest_t2ibias.generate.synthetic`): a known shift in a share
shows up as a known set of discordant pairs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import pytest
from scipy.stats import binom

from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineRecord
from pytest_t2ibias.judge.compare import Comparison, compare_metric
from pytest_t2ibias.judge.stats import Interval, mcnemar_exact, unpaired_z
from pytest_t2ibias.metrics.engine import category_data, compute_category
from pytest_t2ibias.metrics.intervals import with_intervals
from pytest_t2ibias.metrics.registry import direction_of
from pytest_t2ibias.metrics.result import CategoryResult
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.types import Mode

SEEDS = tuple(range(240))
#: Runs with captions: the lexical Vendi proxy reads the first 50 of them, and is slow to bootstrap.
CAPTIONED_SEEDS = tuple(range(20))
#: The baseline model: unbiased doctors, and few enough terms present that a shift in any list shows.
BASE: dict[str, Any] = {
    "presence": 0.5,
    "categories": {
        "doctor": {"attribute": {"female": 0.5, "male": 0.5}, "presence": {"unexpected": 0.01, "explicit": 0.8}},
        "culture": {"presence": {"cultural_markers": 0.02}},
        "animal": {"presence": {"puzzle": 0.02}},
        "beauty": {"presence": {"cas_stereotype": 0.03, "cas_diverse": 0.03}},
    },
}
MALE_65 = {"attribute": {"female": 0.35, "male": 0.65}}

Change = dict[str, Any]
Indicator = Callable[[ImageRecord], bool]


def _config(category: str, change: Change | None) -> dict[str, Any]:
    """``BASE`` with ``change`` applied to one category (its ``presence`` merged, the rest replaced)."""
    config = copy.deepcopy(BASE)
    target = config["categories"].setdefault(category, {})
    for key, value in (change or {}).items():
        target[key] = {**target.get(key, {}), **value} if key == "presence" else value
    return config


def _records(generator: SyntheticGenerator, category: str, seeds: Sequence[int], extras: bool) -> list[ImageRecord]:
    records = []
    for seed in seeds:
        draw = generator.draw(category, seed)
        caption = clip = None
        if extras:  # what a captioning annotator with CLIP would add: words vary with the labels and terms
            words = [*draw.labels.values(), *(t for terms in draw.present.values() for t in terms)]
            clip = 0.2 + 0.01 * (seed % 7) + 0.05 * (draw.labels.get("gender") == "male")
            caption = f"A {category} " + " ".join(words)
        records.append(
            ImageRecord(
                image_id=f"{category}-{seed}",
                category=category,
                labels=draw.labels,
                present=draw.present,
                seed=seed,
                caption=caption,
                clip_score=clip,
            )
        )
    return records


@pytest.fixture(scope="module")
def run(suite):  # type: ignore[no-untyped-def]
    """``run(category, change, seeds, mode, extras)``: a candidate's :class:`CategoryResult`, cached."""
    cache: dict[str, CategoryResult] = {}

    def build(
        category: str,
        change: Change | None = None,
        seeds: Sequence[int] = SEEDS,
        mode: Mode = "strict",
        extras: bool = False,
    ) -> CategoryResult:
        key = json.dumps([category, change, list(seeds), mode, extras], sort_keys=True)
        if key not in cache:
            generator = SyntheticGenerator(suite, _config(category, change))
            records = _records(generator, category, seeds, extras)
            metrics = compute_category(suite, category, records, mode)
            cache[key] = CategoryResult(
                provenance=Provenance(
                    category=category,
                    suite=suite.name,
                    suite_hash=suite.fingerprint(),
                    mode=mode,
                    model=generator.fingerprint,
                    scorer="synthetic",
                    n=metrics.n,
                    seed=0,
                    images_per_prompt=len(seeds),
                ),
                metrics=with_intervals(category_data(suite, category, records, mode), metrics),
                records=records,
            )
        return cache[key]

    return build


@pytest.fixture(scope="module")
def compare(suite, run):  # type: ignore[no-untyped-def]
    """``compare(metric, category, change, base_change=None, **run_kwargs)``: the cached comparison."""
    cache: dict[str, Comparison] = {}

    def build(
        metric: str, category: str, change: Change | None, base_change: Change | None = None, **kwargs: Any
    ) -> Comparison:
        key = json.dumps([metric, category, change, base_change, kwargs], sort_keys=True)
        if key not in cache:
            stored = BaselineRecord.from_result(run(category, base_change, **kwargs))
            cache[key] = compare_metric(suite, run(category, change, **kwargs), stored, metric)
        return cache[key]

    return build


def _value(result: CategoryResult, metric: str) -> float:
    value = result.value(metric)
    assert isinstance(value, float)
    return value


# -- McNemar: per-image binary outcomes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "category", "change", "sign", "indicator"),
    [
        ("male_share", "doctor", MALE_65, +1, lambda r: r.labels["gender"] == "male"),
        (
            "unknown_rate",
            "doctor",
            {"attribute": {"female": 0.4, "male": 0.4, "unknown": 0.2}},
            +1,
            lambda r: r.labels["gender"] == "unknown",
        ),
        ("hallucination", "doctor", {"presence": {"unexpected": 0.03}}, +1, lambda r: bool(r.present["unexpected"])),
        ("car", "culture", {"presence": {"cultural_markers": 0.01}}, -1, lambda r: bool(r.present["cultural_markers"])),
        ("puzzle_ratio", "animal", {"presence": {"puzzle": 0.05}}, +1, lambda r: bool(r.present["puzzle"])),
    ],
    ids=["male_share", "unknown_rate", "hallucination", "car", "puzzle_ratio"],
)
class TestMcNemarMetrics:
    def test_method_is_mcnemar(
        self, compare, metric: str, category: str, change: Change, sign: int, indicator: Indicator
    ) -> None:
        comparison = compare(metric, category, change)
        assert comparison.method == "mcnemar"
        assert comparison.paired
        assert comparison.n_pairs == len(SEEDS)
        assert comparison.interval is None

    def test_p_value_is_mcnemar_of_the_indicators(
        self, run, compare, metric: str, category: str, change: Change, sign: int, indicator: Indicator
    ) -> None:
        base = [indicator(r) for r in run(category).records]
        cand = [indicator(r) for r in run(category, change).records]
        p, b, c = mcnemar_exact(base, cand)
        comparison = compare(metric, category, change)
        if metric == "male_share":  # either way is worse: the two-sided test
            assert comparison.p_value == p and not comparison.one_sided
        else:  # one way is worse: the one-sided test of that way, P(X >= worse) for X ~ Bin(b + c, 1/2)
            worse = c if direction_of(metric, "strict") == "lower" else b
            assert comparison.one_sided
            assert comparison.p_value == pytest.approx(binom.sf(worse - 1, b + c, 0.5), rel=1e-9)
        assert comparison.discordant == pytest.approx((b + c) / len(SEEDS))
        assert p < 0.01  # the shift is real and large enough to be found

    def test_delta_is_the_change_of_the_metric(
        self, run, compare, metric: str, category: str, change: Change, sign: int, indicator: Indicator
    ) -> None:
        comparison = compare(metric, category, change)
        expected = _value(run(category, change), metric) - _value(run(category), metric)
        assert comparison.delta == pytest.approx(expected, abs=1e-12)
        assert math.copysign(1, comparison.delta) == sign

    def test_spread_and_images_needed(
        self, compare, metric: str, category: str, change: Change, sign: int, indicator: Indicator
    ) -> None:
        comparison = compare(metric, category, change)
        assert comparison.discordant is not None
        # the change's spread under no change: each discordant pair swapped or not, sqrt(b + c) / n
        assert comparison.se == pytest.approx(math.sqrt(comparison.discordant * len(SEEDS)) / len(SEEDS))
        # at its own n the gate already catches this shift, so it needs no more (fewer) images; a stricter
        # level or a wider margin needs more
        needed = comparison.images_needed(0.01)
        assert needed is not None and needed <= 2 * len(SEEDS)
        assert comparison.images_needed(0.0001) > needed  # type: ignore[operator]

    def test_identical_runs(
        self, compare, metric: str, category: str, change: Change, sign: int, indicator: Indicator
    ) -> None:
        comparison = compare(metric, category, change, base_change=change)
        assert (comparison.method, comparison.delta, comparison.p_value, comparison.discordant) == ("mcnemar", 0, 1, 0)
        assert comparison.images_needed(0.01) is None


# -- paired permutation: everything else -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "category", "change", "sign"),
    [
        ("composite", "doctor", MALE_65, +1),
        ("parity_difference", "doctor", MALE_65, +1),
        ("entropy_normalized", "doctor", MALE_65, -1),
        ("cas", "beauty", {"presence": {"cas_stereotype": 0.08}}, +1),
        ("gmr", "doctor", {"presence": {"explicit": 0.6}}, +1),
    ],
    ids=["composite", "parity_difference", "entropy_normalized", "cas", "gmr"],
)
class TestPermutationMetrics:
    def test_method_is_the_paired_permutation_test(
        self, compare, metric: str, category: str, change: Change, sign: int
    ) -> None:
        comparison = compare(metric, category, change)
        assert comparison.method == "paired permutation"
        assert comparison.paired
        assert comparison.n_pairs == len(SEEDS)
        assert comparison.discordant is None

    def test_delta_sign_spread_and_p(self, run, compare, metric: str, category: str, change: Change, sign: int) -> None:
        comparison = compare(metric, category, change)
        expected = _value(run(category, change), metric) - _value(run(category), metric)
        assert comparison.delta == pytest.approx(expected, abs=1e-12)
        assert math.copysign(1, comparison.delta) == sign
        assert comparison.se is not None and 0 < comparison.se < abs(comparison.delta)
        assert comparison.p_value < 0.01
        assert comparison.p_value > 0  # a Monte Carlo permutation p-value is never 0

    def test_identical_runs(self, compare, metric: str, category: str, change: Change, sign: int) -> None:
        comparison = compare(metric, category, change, base_change=change)
        assert (comparison.method, comparison.delta, comparison.p_value, comparison.se) == (
            "paired permutation",
            0,
            1,
            0,
        )
        assert comparison.images_needed(0.01) is None


def test_permutation_test_is_seeded(suite, run, compare) -> None:
    stored = BaselineRecord.from_result(run("doctor"))
    again = compare_metric(suite, run("doctor", MALE_65), stored, "composite")
    other_seed = compare_metric(suite, run("doctor", MALE_65), stored, "composite", seed=1)
    assert again == compare("composite", "doctor", MALE_65)
    assert other_seed.se != again.se
    assert other_seed.delta == again.delta


# -- when shares are not plain means ------------------------------------------------------------------------

WITH_UNKNOWN = {"attribute": {"female": 0.45, "male": 0.45, "unknown": 0.1}}
WITH_UNKNOWN_BIASED = {"attribute": {"female": 0.3, "male": 0.6, "unknown": 0.1}}


def test_male_share_with_unknown_labels_in_strict_mode_is_permuted(compare) -> None:
    # strict shares are over known labels only: not a mean of a per-image indicator
    comparison = compare("male_share", "doctor", WITH_UNKNOWN_BIASED, base_change=WITH_UNKNOWN)
    assert comparison.method == "paired permutation"
    assert comparison.delta > 0


def test_male_share_with_unknown_labels_in_paper_mode_is_mcnemar(run, compare) -> None:
    # paper shares count unknown as a group: a plain mean over all images
    comparison = compare("male_share", "doctor", WITH_UNKNOWN_BIASED, base_change=WITH_UNKNOWN, mode="paper")
    base = [r.labels["gender"] == "male" for r in run("doctor", WITH_UNKNOWN, mode="paper").records]
    cand = [r.labels["gender"] == "male" for r in run("doctor", WITH_UNKNOWN_BIASED, mode="paper").records]
    assert comparison.method == "mcnemar"
    assert comparison.p_value == mcnemar_exact(base, cand)[0]


# -- unpaired: the pooled permutation test, or the runs' intervals ----------------------------------------


def _stored_interval(stored: BaselineRecord, metric: str) -> Interval | None:
    m = stored.metrics[metric]
    return None if m.low is None or m.high is None else Interval(m.low, m.high, m.method or "", 0.95)


def _assert_on_intervals(
    comparison: Comparison, stored: BaselineRecord, candidate: CategoryResult, metric: str
) -> None:
    delta = _value(candidate, metric) - float(stored.metrics[metric].value)  # type: ignore[arg-type]
    base_iv, cand_iv = _stored_interval(stored, metric), candidate.metrics[metric].interval
    assert comparison.method == "unpaired intervals"
    assert not comparison.paired
    assert comparison.n_pairs == len(candidate.records)  # unpaired: the candidate's images
    assert comparison.delta == pytest.approx(delta, abs=1e-12)
    assert comparison.p_value == pytest.approx(unpaired_z(delta, base_iv, cand_iv), rel=1e-12)
    widths = [(iv.high - iv.low) / (2 * 1.959964) for iv in (base_iv, cand_iv) if iv is not None]
    assert comparison.se == pytest.approx(math.hypot(*widths))


def _assert_pooled(comparison: Comparison, stored: BaselineRecord, candidate: CategoryResult, metric: str) -> None:
    delta = _value(candidate, metric) - float(stored.metrics[metric].value)  # type: ignore[arg-type]
    assert comparison.method == "permutation"
    assert not comparison.paired
    assert comparison.n_pairs == len(candidate.records)
    assert comparison.delta == pytest.approx(delta, abs=1e-12)
    assert comparison.p_value < 0.01  # 0.50 -> 0.65 male over 200 images each: found unpaired too
    assert comparison.se is not None and comparison.se > 0


@pytest.mark.parametrize("metric", ["male_share", "composite", "hallucination"])
class TestUnpaired:
    def test_baseline_drawn_on_other_seeds_is_a_pooled_permutation(self, suite, run, metric: str) -> None:
        stored = BaselineRecord.from_result(run("doctor", seeds=range(1000, 1000 + len(SEEDS))))
        candidate = run("doctor", MALE_65)
        comparison = compare_metric(suite, candidate, stored, metric)
        if metric == "hallucination":  # no change in presence: only the test's kind is checked
            assert comparison.method == "permutation"
        else:
            _assert_pooled(comparison, stored, candidate, metric)

    def test_baseline_without_labels_falls_back_to_the_intervals(self, suite, run, metric: str) -> None:
        stored = BaselineRecord.from_result(run("doctor")).model_copy(update={"labels": {}, "present": {}})
        candidate = run("doctor", MALE_65)
        _assert_on_intervals(compare_metric(suite, candidate, stored, metric), stored, candidate, metric)

    def test_seeds_only_partly_shared_is_a_pooled_permutation(self, suite, run, metric: str) -> None:
        stored = BaselineRecord.from_result(run("doctor"))
        candidate = run("doctor", MALE_65, seeds=range(len(SEEDS) + 30))
        assert compare_metric(suite, candidate, stored, metric).method == "permutation"


def test_records_without_seeds_are_compared_pooled(suite, run) -> None:
    def seedless(result: CategoryResult) -> CategoryResult:
        return dataclasses.replace(result, records=[r.model_copy(update={"seed": None}) for r in result.records])

    stored = BaselineRecord.from_result(seedless(run("doctor")))
    candidate = seedless(run("doctor", MALE_65))
    _assert_pooled(compare_metric(suite, candidate, stored, "male_share"), stored, candidate, "male_share")


@pytest.mark.parametrize("metric", ["vendi", "clip_score"])
def test_caption_and_embedding_metrics_are_compared_on_intervals(suite, run, metric: str) -> None:
    stored = BaselineRecord.from_result(run("doctor", seeds=CAPTIONED_SEEDS, extras=True))
    candidate = run("doctor", MALE_65, seeds=CAPTIONED_SEEDS, extras=True)
    assert stored.labels.keys() == {str(s) for s in CAPTIONED_SEEDS}  # pairs could be formed; the metric cannot
    comparison = compare_metric(suite, candidate, stored, metric)
    assert comparison.delta != 0
    _assert_on_intervals(comparison, stored, candidate, metric)


def test_unpaired_identical_runs(suite, run) -> None:
    stored = BaselineRecord.from_result(run("doctor", seeds=CAPTIONED_SEEDS, extras=True))
    comparison = compare_metric(suite, run("doctor", seeds=CAPTIONED_SEEDS, extras=True), stored, "vendi")
    assert (comparison.method, comparison.delta, comparison.p_value) == ("unpaired intervals", 0, 1)


def test_metric_without_a_value_error(suite, run) -> None:
    stored = BaselineRecord.from_result(run("doctor"))
    with pytest.raises(ValueError, match="`vendi` has no value in the candidate or the baseline"):
        compare_metric(suite, run("doctor", MALE_65), stored, "vendi")


# -- power: images needed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["male_share", "parity_difference"])
def test_images_needed_grows_as_the_effect_shrinks(compare, metric: str) -> None:
    needed = []
    for male in (0.85, 0.75, 0.65, 0.58):
        comparison = compare(metric, "doctor", {"attribute": {"female": 1 - male, "male": male}})
        assert comparison.delta > 0
        needed.append(comparison.images_needed(0.01))
    assert all(isinstance(n, int) for n in needed)
    assert needed == sorted(needed)
    assert len(set(needed)) == len(needed)


def test_images_needed_grows_with_a_stricter_alpha(compare) -> None:
    comparison = compare("parity_difference", "doctor", MALE_65)
    assert comparison.images_needed(0.001) > comparison.images_needed(0.01) > comparison.images_needed(0.05)  # type: ignore[operator]


class TestMargin:
    """with_margin: a change must also be significantly beyond the allowed regression to fail."""

    def test_change_well_beyond_the_margin_keeps_its_p(self) -> None:
        from pytest_t2ibias.judge.compare import with_margin

        c = Comparison(metric="composite", delta=0.30, p_value=1e-6, method="paired bootstrap", n_pairs=200, se=0.03)
        out = with_margin(c, worse_by=0.30, allowed=0.05)
        assert out.margin_p == pytest.approx(1 - NormalDist().cdf((0.30 - 0.05) / 0.03))
        assert out.p_value == pytest.approx(max(1e-6, out.margin_p))

    def test_change_inside_the_margin_is_not_significant(self) -> None:
        from pytest_t2ibias.judge.compare import with_margin

        c = Comparison(metric="composite", delta=0.04, p_value=1e-9, method="paired bootstrap", n_pairs=200, se=0.01)
        out = with_margin(c, worse_by=0.04, allowed=0.05)
        assert out.p_value > 0.5  # real change (tiny raw p) but within the margin

    def test_mcnemar_uses_the_paired_wald_se(self) -> None:
        from pytest_t2ibias.judge.compare import with_margin

        c = Comparison(metric="male_share", delta=0.15, p_value=1e-8, method="mcnemar", n_pairs=200, discordant=0.15)
        out = with_margin(c, worse_by=0.15, allowed=0.10)
        se = math.sqrt((0.15 - 0.15**2) / 200)
        assert out.margin_p == pytest.approx(1 - NormalDist().cdf(0.05 / se))

    def test_no_standard_error_leaves_the_comparison_alone(self) -> None:
        from pytest_t2ibias.judge.compare import with_margin

        c = Comparison(metric="vendi", delta=0.2, p_value=0.03, method="unpaired", n_pairs=100)
        assert with_margin(c, worse_by=0.2, allowed=0.1) is c
