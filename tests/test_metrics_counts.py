"""The engine computes from sufficient statistics: it must equal the scalar definitions exactly.

Point values of every count metric equal the reference implementations (``reference_metrics.py``: the
pure functions applied to one category's data) to 1e-12, with the same reasons when unavailable, in both
modes, on random and degenerate data. Every bootstrap replicate the vectorised engine computes equals the
reference on the images that replicate drew. Data metrics computed on many resamples at once equal the
metric recomputed resample by resample. Columnar input gives what records give.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from reference_metrics import REFERENCE

from pytest_t2ibias.errors import MetricUnavailable
from pytest_t2ibias.metrics.counts import multinomial_draws, stats_of, type_table
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import category_data, compute_category, compute_data
from pytest_t2ibias.metrics.intervals import bootstrap_draws, bootstrap_intervals
from pytest_t2ibias.metrics.registry import METRICS, metric_def, reads_of
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.types import Mode

SUITE = load_suite("t2i-biasbench")
CATEGORIES = list(SUITE.categories)
MODES: list[Mode] = ["paper", "strict"]


def _random_data(category: str, mode: Mode, n: int, seed: int, kind: str = "random") -> CategoryData:
    """Columns of ``n`` images: labels from the declared groups, unknown and a stray label; random terms."""
    rng = np.random.default_rng(seed)
    spec = SUITE.categories[category]
    attribute = SUITE.attribute_of(category)
    assert attribute is not None
    choices = [*attribute.groups, "unknown", attribute.unmatched, "stray"]
    if kind == "all_unknown":
        labels = ["unknown"] * n
    elif kind == "one_group":
        labels = [next(iter(attribute.groups))] * n
    else:
        p = rng.dirichlet(np.ones(len(choices)) * 0.7)
        labels = [choices[i] for i in rng.choice(len(choices), size=n, p=p)]
    presence = 0.0 if kind == "no_terms" else rng.uniform(0.05, 0.6)
    present = {name: rng.random((n, len(spec.term_list(name)))) < presence for name in spec.list_names()}
    return CategoryData.from_columns(SUITE, category, mode, labels=labels, present=present)


def _reference(data: CategoryData, metric_id: str) -> tuple[Any, str | None]:
    definition = metric_def(metric_id, data.spec)
    assert definition is not None
    fn = REFERENCE.get(metric_id)
    if fn is None:  # shares and context ratios
        if metric_id in data.spec.shares:
            group = data.spec.shares[metric_id]

            def fn(d: CategoryData) -> Any:
                return d.distribution().as_dict().get(group, 0.0)

        else:
            name = metric_id.removesuffix("_ratio")

            def fn(d: CategoryData) -> Any:
                return float(d.matrix(name).any(axis=1).mean())

    if data.n == 0:
        return None, "no images in category"
    try:
        return fn(data), None
    except MetricUnavailable as why:
        return None, str(why)


def _same(ours: Any, ref: Any) -> bool:
    if ref is None or ours is None:
        return ours is None and ref is None
    if isinstance(ref, dict):
        return (
            isinstance(ours, dict)
            and list(ours) == list(ref)
            and all(math.isclose(ours[k], ref[k], abs_tol=1e-12) for k in ref)
        )
    return math.isclose(float(ours), float(ref), abs_tol=1e-12, rel_tol=0)


CASES = [("random", n, seed) for n in (1, 2, 7, 40, 333) for seed in range(3)] + [
    ("all_unknown", 5, 0),
    ("one_group", 6, 0),
    ("no_terms", 9, 0),
]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize(("kind", "n", "seed"), CASES)
def test_point_values_equal_the_reference(category: str, mode: Mode, kind: str, n: int, seed: int) -> None:
    data = _random_data(category, mode, n, seed, kind)
    result = compute_data(data)
    checked = 0
    for metric_id, value in result.metrics.items():
        definition = metric_def(metric_id, data.spec)
        assert definition is not None
        if definition.counts is None:
            continue
        ref, reason = _reference(data, metric_id)
        assert _same(value, ref), (metric_id, value, ref)
        assert result.reasons.get(metric_id) == reason, metric_id
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("category", CATEGORIES)
def test_every_replicate_equals_the_reference_on_its_images(category: str, mode: Mode) -> None:
    data = _random_data(category, mode, 60, seed=11)
    checked = 0
    for metric_id in compute_data(data).metrics:
        definition = metric_def(metric_id, data.spec)
        assert definition is not None
        if definition.counts is None or definition.distribution:
            continue
        reads = reads_of(definition, data.spec)
        table = type_table(data, reads)
        draws = multinomial_draws(table.counts, 25, seed=3, stream="test")
        values = definition.counts(stats_of(data, table, draws))
        # each replicate's images: the first image of each type, repeated as often as drawn
        features = [np.stack([np.asarray(table.values[f]) for f in reads], axis=1)] if reads else []
        for b, weights in enumerate(draws):
            index = np.concatenate(
                [np.repeat(_first_image_of(data, reads, features[0][t] if features else None), w) for t, w in
                 enumerate(weights)]
            )  # fmt: skip
            ref, _ = _reference(data.resample(index.astype(np.intp)), metric_id)
            ours = values[b]  # type: ignore[index]
            assert _same(None if np.isnan(ours) else ours, ref), (metric_id, b, ours, ref)
            checked += 1
    assert checked > 100


def _first_image_of(data: CategoryData, reads: tuple[str, ...], values: Any) -> int:
    from pytest_t2ibias.metrics.counts import image_features

    if values is None:
        return 0
    columns = np.stack([image_features(data, f) for f in reads], axis=1)
    return int(np.flatnonzero((columns == values).all(axis=1))[0])


@pytest.mark.parametrize("metric_id", ["vendi", "vendi_embedding", "clip_score"])
def test_data_metrics_on_many_resamples_equal_one_at_a_time(metric_id: str) -> None:
    rng = np.random.default_rng(5)
    words = ["red", "cat", "dog", "doctor", "blue", "sky", "a", "the", "surgeon", "room"]
    n = 70
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 6))) for _ in range(n)]
    data = CategoryData.from_columns(
        SUITE,
        "doctor",
        "strict",
        labels=["male"] * n,
        texts=texts,
        embeddings=rng.normal(size=(n, 5 if metric_id == "vendi_embedding" else 3)) + 0.5,
        clip_scores=rng.uniform(0, 1, size=n),
    )
    definition = METRICS[metric_id]
    assert definition.resampled is not None
    index = rng.integers(0, n, size=(40, n))
    fast = definition.resampled(data, index)
    for b, row in enumerate(index):
        try:
            slow = definition.fn(data.resample(row))
        except MetricUnavailable:
            slow = None
        assert _same(None if np.isnan(fast[b]) else fast[b], slow), (b, fast[b], slow)


def test_vendi_embedding_resamples_use_the_smaller_matrix_either_way() -> None:
    rng = np.random.default_rng(2)
    for n, d in ((6, 20), (30, 4)):
        data = CategoryData.from_columns(
            SUITE, "doctor", "strict", labels=["male"] * n, embeddings=rng.normal(size=(n, d))
        )
        index = rng.integers(0, n, size=(5, n))
        fast = METRICS["vendi_embedding"].resampled(data, index)  # type: ignore[misc]
        slow = [METRICS["vendi_embedding"].fn(data.resample(row)) for row in index]
        assert np.allclose(fast, slow, atol=1e-9)


def _records(category: str, data: CategoryData) -> list[ImageRecord]:
    spec = SUITE.categories[category]
    assert spec.attribute is not None
    return [
        ImageRecord(
            image_id=f"{category}-{i}",
            category=category,
            labels={spec.attribute: data.labels[i]},
            present={
                name: [t for t, hit in zip(spec.term_list(name), data.present[name][i], strict=True) if hit]
                for name in spec.list_names()
            },
            seed=i,
        )
        for i in range(data.n)
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("category", CATEGORIES)
def test_columnar_input_gives_what_records_give(category: str, mode: Mode) -> None:
    data = _random_data(category, mode, 50, seed=4)
    via_records = compute_category(SUITE, category, _records(category, data), mode)
    assert via_records.metrics == compute_data(data).metrics
    # labels as integer codes into a name table: the fast path for large n
    names = sorted(set(data.labels))
    coded = CategoryData.from_columns(
        SUITE,
        category,
        mode,
        labels=[names.index(label) for label in data.labels],
        label_names=names,
        present=data.present,
    )
    assert compute_data(coded).metrics == compute_data(data).metrics
    assert bootstrap_intervals(coded, 200, seed=1) == bootstrap_intervals(data, 200, seed=1)


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"columns of category 'doctor' differ in length"):
        CategoryData.from_columns(SUITE, "doctor", "strict", labels=["male"] * 3, texts=["a", "b"])
    with pytest.raises(ValueError, match=r"`present.explicit` must have shape \(2, 6\)"):
        CategoryData.from_columns(
            SUITE, "doctor", "strict", labels=["male"] * 2, present={"explicit": np.zeros((2, 3), bool)}
        )
    with pytest.raises(ValueError, match=r"`labels` codes must be in \[0, 2\)"):
        CategoryData.from_columns(SUITE, "doctor", "strict", labels=[0, 2], label_names=["male", "female"])


def test_bootstrap_draws_are_seeded_and_depend_only_on_the_data() -> None:
    data = _random_data("doctor", "strict", 80, seed=1)
    again = _random_data("doctor", "strict", 80, seed=1)
    first = bootstrap_draws(data, 100, seed=7)
    assert first.keys() == bootstrap_draws(again, 100, seed=7).keys()
    for metric_id, values in first.items():
        np.testing.assert_array_equal(values, bootstrap_draws(again, 100, seed=7)[metric_id])
    # asking for one metric gives the same replicates as asking for all
    np.testing.assert_array_equal(bootstrap_draws(data, 100, 7, metrics=["entropy"])["entropy"], first["entropy"])


def test_records_path_matches_category_data_of_records() -> None:
    data = _random_data("culture", "strict", 30, seed=9)
    records = _records("culture", data)
    assert compute_data(category_data(SUITE, "culture", records, "strict")).metrics == compute_data(data).metrics
