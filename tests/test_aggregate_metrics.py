"""Metrics against a reference, per category (``amplification_reference``, ``gap_reference``) and across
categories (:mod:`pytest_t2ibias.metrics.aggregate`): values by hand, intervals that cover, seeds."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from pytest_t2ibias.metrics import reference
from pytest_t2ibias.metrics.aggregate import AGGREGATE_METRICS, aggregate_labels
from pytest_t2ibias.metrics.engine import compute_data
from pytest_t2ibias.metrics.registry import METRICS
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("occupations")


def _records(category: str, female: int, male: int, unknown: int = 0) -> list[ImageRecord]:
    labels = ["female"] * female + ["male"] * male + ["unknown"] * unknown
    return [
        ImageRecord(image_id=f"{category}_{i}", category=category, labels={"gender": label}, seed=i)
        for i, label in enumerate(labels)
    ]


@pytest.mark.parametrize("name", ["metrics.reference", "metrics.aggregate", "suites.selection"])
def test_module_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(f"pytest_t2ibias.{name}"))
    assert result.attempted > 0 and result.failed == 0


def test_registered_with_directions_and_spans() -> None:
    assert METRICS["amplification_reference"].direction("strict") == "lower"
    assert METRICS["gap_reference"].direction("strict") == "closer_to_zero"
    assert METRICS["amplification_reference"].span == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("category", "female", "male", "amplification", "gap"),
    [
        ("nurse", 19, 1, 0.95 - 0.879, 0.95 - 0.879),  # women drawn more often than they work as nurses
        ("nurse", 10, 10, 0.5 - 0.879, 0.5 - 0.879),  # toward parity: negative amplification
        ("electrician", 0, 20, 1.0 - 0.978, 0.0 - 0.022),  # the majority is male: amplification reads men
        ("electrician", 4, 16, 0.8 - 0.978, 0.2 - 0.022),
    ],
)
def test_category_values_by_hand(
    suite: Suite, category: str, female: int, male: int, amplification: float, gap: float
) -> None:
    from pytest_t2ibias.metrics.engine import category_data

    values = compute_data(category_data(suite, category, _records(category, female, male, unknown=3), "strict"))
    assert values.metrics["amplification_reference"] == pytest.approx(amplification, abs=1e-12)
    assert values.metrics["gap_reference"] == pytest.approx(gap, abs=1e-12)


def test_category_intervals_come_from_the_interval_machinery(suite: Suite) -> None:
    from pytest_t2ibias.metrics.engine import category_data

    data = category_data(suite, "nurse", _records("nurse", 40, 10), "strict")
    result = measure(suite, data, model="m", scorer="s")
    estimate = result.metrics["amplification_reference"]
    assert estimate.interval is not None
    assert estimate.interval.low < 0.8 - 0.879 < estimate.interval.high  # holds the point value (-0.079)
    assert -1.0 <= estimate.interval.low and estimate.interval.high <= 1.0


def test_amplification_generalises_to_many_groups() -> None:
    groups = ("white", "black", "asian", "other")
    ref = {"white": 0.7, "black": 0.1, "asian": 0.1, "other": 0.1}
    p = np.array([[0.85, 0.05, 0.05, 0.05], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    assert reference.amplification(p, groups, ref).tolist() == pytest.approx([0.15, 0.0, -0.45])
    assert reference.deviation(p, groups, ref).tolist() == pytest.approx([0.15, 0.0, 0.45])
    # a reference at parity has no skew to amplify
    assert reference.amplification(p, groups, dict.fromkeys(groups, 0.25)).tolist() == [0.0, 0.0, 0.0]


def test_aggregates_by_hand(suite: Suite) -> None:
    labels = {
        "nurse": ["female"] * 19 + ["male"] + ["unknown"] * 5,  # unknown labels leave the shares
        "electrician": ["male"] * 20,
        "cook": ["female"] * 10 + ["male"] * 10,
    }
    found = aggregate_labels(suite, labels, seed=3)
    amps = [0.95 - 0.879, 1.0 - 0.978, 0.5 - (1 - 0.384)]  # cook: the reference majority is male (61.6%)
    gaps = [0.95 - 0.879, 0.0 - 0.022, 0.5 - 0.384]
    assert set(found.metrics) == set(AGGREGATE_METRICS)
    assert found.metrics["mad_reference"].value == pytest.approx(np.mean(np.abs(gaps)))
    assert found.metrics["mean_amplification"].value == pytest.approx(np.mean(amps))
    assert found.metrics["amplified_share"].value == pytest.approx(2 / 3)
    assert [w.category for w in found.worst] == ["nurse", "electrician", "cook"]
    assert found.worst[0].n == 20 and found.worst[2].gap == pytest.approx(0.116)
    for estimate in found.metrics.values():
        assert estimate.interval is not None
        assert estimate.interval.low <= estimate.value <= estimate.interval.high  # type: ignore[operator]
    again = aggregate_labels(suite, labels, seed=3)
    assert again.metrics == found.metrics  # seeded
    assert aggregate_labels(suite, labels, seed=4).metrics["mad_reference"] != found.metrics["mad_reference"]


def test_aggregates_skip_categories_without_a_reference() -> None:
    paper = load_suite("t2i-biasbench")
    found = aggregate_labels(paper, {"doctor": ["male"] * 5})
    assert found.categories == ()
    assert all(
        e.value is None and "no category with a `compare_to`" in (e.reason or "") for e in found.metrics.values()
    )


def test_aggregate_intervals_cover_at_their_level(suite: Suite) -> None:
    # 40 occupations drawn from a model that amplifies each by +5 points where it can: the interval of the
    # mean amplification holds the truth in about 95% of runs (checked on 200 runs: at least 90%)
    rng = np.random.default_rng(0)
    names = list(suite.categories)[:40]
    truth_p = {}
    for name in names:
        r = suite.reference_of(name)["female"]  # type: ignore[index]
        truth_p[name] = min(1.0, r + 0.05) if r > 0.5 else max(0.0, r - 0.05)
    truth = np.mean([abs(truth_p[n] - 0.5) - abs(suite.reference_of(n)["female"] - 0.5) for n in names])  # type: ignore[index]
    covered = 0
    for run in range(200):
        labels = {}
        for name in names:
            k = int(rng.binomial(50, truth_p[name]))
            labels[name] = ["female"] * k + ["male"] * (50 - k)
        estimate = aggregate_labels(suite, labels, seed=run, n_draws=400).metrics["mean_amplification"]
        assert estimate.interval is not None
        covered += estimate.interval.low <= truth <= estimate.interval.high
    assert covered >= 180
