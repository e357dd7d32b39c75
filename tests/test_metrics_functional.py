"""Unit tests of the pure numpy metric functions against independent references.

Style follows torchmetrics' functional tests: each metric is checked on fixed-seed random inputs
against a reference computed another way (scipy, or a plain-Python loop), every error message has its
own ``pytest.raises(..., match=...)`` test, and the edge cases of the spec are named tests.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from pytest_t2ibias.metrics import (
    any_rate,
    bias_amplification,
    composite_score,
    contextual_association,
    coverage,
    distinct_present,
    kl_from_uniform,
    lexical_vendi,
    missing_rate,
    normalized_entropy,
    parity_difference,
    proportions,
    shannon_entropy,
    signed_parity,
)
from pytest_t2ibias.metrics.association import CAS_EPS
from pytest_t2ibias.metrics.diversity import PAPER_VENDI_LIMIT

# ----------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------


def _random_shares(k: int, seed: int, n_zero: int = 0) -> np.ndarray:
    """A share vector of length k with ``n_zero`` exact zeros, from a fixed seed."""
    rng = np.random.default_rng(seed)
    raw = rng.random(k) + 0.01
    raw[rng.choice(k, size=n_zero, replace=False)] = 0.0
    return raw / raw.sum()


SHARES = [
    pytest.param(np.array([1.0]), id="k1"),
    pytest.param(np.array([0.5, 0.5]), id="k2-uniform"),
    pytest.param(np.array([1.0, 0.0, 0.0]), id="k3-degenerate"),
    pytest.param(np.array([0.74, 0.12, 0.11, 0.02, 0.01]), id="paper-beauty"),
    pytest.param(_random_shares(2, seed=0), id="rand-k2"),
    pytest.param(_random_shares(6, seed=1), id="rand-k6"),
    pytest.param(_random_shares(6, seed=2, n_zero=2), id="rand-k6-zeros"),
    pytest.param(_random_shares(12, seed=3, n_zero=5), id="rand-k12-zeros"),
    pytest.param(np.full(11, 1 / 11), id="k11-uniform"),
]

SHARE_FUNCTIONS = [bias_amplification, shannon_entropy, normalized_entropy, kl_from_uniform]


def _random_presence(n: int, t: int, seed: int, density: float = 0.4) -> np.ndarray:
    return np.random.default_rng(seed).random((n, t)) < density


PRESENCE = [
    pytest.param(np.array([[True]]), id="1x1-true"),
    pytest.param(np.array([[False]]), id="1x1-false"),
    pytest.param(np.ones((4, 3), dtype=bool), id="all-present"),
    pytest.param(np.zeros((4, 3), dtype=bool), id="none-present"),
    pytest.param(_random_presence(10, 6, seed=0), id="rand-10x6"),
    pytest.param(_random_presence(100, 13, seed=1, density=0.1), id="rand-100x13-sparse"),
    pytest.param(_random_presence(37, 1, seed=2), id="rand-37x1"),
    pytest.param(_random_presence(5, 32, seed=3, density=0.9).astype(int), id="rand-5x32-int"),
]

# ----------------------------------------------------------------------------------------------------
# Independent references
# ----------------------------------------------------------------------------------------------------


def _ref_bias_amplification(p: np.ndarray) -> float:
    k = len(p)
    return sum(abs(float(x) - 1.0 / k) for x in p)


def _ref_normalized_entropy(p: np.ndarray) -> float:
    k = len(p)
    return 0.0 if k <= 1 else float(scipy_entropy(p, base=2)) / math.log2(k)


def _ref_missing_rate(present: np.ndarray) -> float:
    rows = present.tolist()
    return sum(sum(1 for x in row if not x) / len(row) for row in rows) / len(rows)


def _ref_coverage(present: np.ndarray) -> float:
    rows = present.tolist()
    return sum(sum(1 for x in row if x) / len(row) for row in rows) / len(rows)


def _ref_any_rate(present: np.ndarray) -> float:
    rows = present.tolist()
    return sum(1 for row in rows if any(row)) / len(rows)


def _ref_distinct_present(present: np.ndarray) -> int:
    rows = present.tolist()
    return sum(1 for j in range(len(rows[0])) if any(row[j] for row in rows))


def _ref_lexical_vendi(texts: list[str], limit: int | None) -> float:
    chosen = texts if limit is None else texts[:limit]
    words = []
    for text in chosen:
        lowered = text.lower()
        for sep in "/-;":
            lowered = lowered.replace(sep, " ")
        words.append(set(lowered.split()))
    sims = []
    for i in range(len(words)):
        for j in range(i + 1, len(words)):
            union = words[i] | words[j]
            sims.append(len(words[i] & words[j]) / len(union) if union else 1.0)
    return 1.0 - sum(sims) / len(sims)


# ----------------------------------------------------------------------------------------------------
# Share-vector metrics
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", SHARES)
class TestShareMetrics:
    """Each share-vector metric against its independent reference, on the same inputs."""

    def test_shannon_entropy(self, p: np.ndarray) -> None:
        assert shannon_entropy(p) == pytest.approx(float(scipy_entropy(p, base=2)), abs=1e-12)

    def test_normalized_entropy(self, p: np.ndarray) -> None:
        result = normalized_entropy(p)
        assert result == pytest.approx(_ref_normalized_entropy(p), abs=1e-12)
        assert -1e-12 <= result <= 1.0 + 1e-12

    def test_kl_from_uniform(self, p: np.ndarray) -> None:
        uniform = np.full(len(p), 1.0 / len(p))
        assert kl_from_uniform(p) == pytest.approx(float(scipy_entropy(p, uniform)), abs=1e-12)

    def test_bias_amplification(self, p: np.ndarray) -> None:
        assert bias_amplification(p) == pytest.approx(_ref_bias_amplification(p), abs=1e-12)

    def test_list_input_equals_array_input(self, p: np.ndarray) -> None:
        for fn in SHARE_FUNCTIONS:
            assert fn(p.tolist()) == fn(p)

    def test_return_python_float(self, p: np.ndarray) -> None:
        for fn in SHARE_FUNCTIONS:
            assert type(fn(p)) is float


@pytest.mark.parametrize("fn", SHARE_FUNCTIONS)
class TestShareErrors:
    """One test per error message of the share check, for every share-vector metric."""

    @pytest.mark.parametrize("p", [[], np.zeros((2, 2)) + 0.25, 1.0], ids=["empty", "2d", "scalar"])
    def test_not_a_vector(self, fn, p) -> None:
        with pytest.raises(ValueError, match=r"`p` must be a non-empty 1-d vector of shares, got shape"):
            fn(p)

    @pytest.mark.parametrize(
        "p", [[0.5, 0.6], [0.2, 0.2], [-0.5, 1.5], [1.2, -0.2, 0.0]], ids=["sum>1", "sum<1", "negative", "neg-sum1"]
    )
    def test_not_shares(self, fn, p) -> None:
        with pytest.raises(ValueError, match=r"`p` must be non-negative and sum to 1"):
            fn(p)


def test_shannon_entropy_zeros_contribute_nothing() -> None:
    assert shannon_entropy([0.5, 0.5, 0.0, 0.0]) == pytest.approx(1.0)
    assert shannon_entropy([0.25, 0.0, 0.25, 0.0, 0.5]) == pytest.approx(1.5)


@pytest.mark.parametrize("p", [[1.0], [1.0, 0.0], [0.0, 0.0, 1.0]])
def test_shannon_entropy_is_never_negative_zero(p: list[float]) -> None:
    result = shannon_entropy(p)
    assert result == 0.0
    assert math.copysign(1.0, result) == 1.0, "entropy of a point mass must be +0.0, not -0.0"


@pytest.mark.parametrize("k", [1, 2, 3, 6, 12])
def test_shannon_entropy_uniform_is_log2_k(k: int) -> None:
    assert shannon_entropy(np.full(k, 1.0 / k)) == pytest.approx(math.log2(k))


@pytest.mark.parametrize("p", [[1.0], np.array([1.0])])
def test_normalized_entropy_single_group_is_zero(p) -> None:
    result = normalized_entropy(p)
    assert result == 0.0
    assert math.copysign(1.0, result) == 1.0


def test_normalized_entropy_counts_zero_groups_in_k() -> None:
    # Strict mode passes the declared groups, so empty groups still count in log2 k.
    assert normalized_entropy([0.5, 0.5]) == pytest.approx(1.0)
    assert normalized_entropy([0.5, 0.5, 0.0, 0.0]) == pytest.approx(0.5)


@pytest.mark.parametrize("k", [2, 3, 7, 11])
def test_normalized_entropy_uniform_is_one(k: int) -> None:
    assert normalized_entropy(np.full(k, 1.0 / k)) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 2, 3, 6, 12])
def test_kl_from_uniform_point_mass_is_ln_k(k: int) -> None:
    p = np.zeros(k)
    p[0] = 1.0
    assert kl_from_uniform(p) == pytest.approx(math.log(k))


@pytest.mark.parametrize("k", [1, 2, 3, 7, 10])
def test_kl_from_uniform_uniform_is_zero(k: int) -> None:
    assert kl_from_uniform(np.full(k, 1.0 / k)) == pytest.approx(0.0, abs=1e-12)


def test_kl_from_uniform_uses_natural_log() -> None:
    # 2/3 ln(4/3) + 1/3 ln(2/3) in nats (the same in bits would be 0.0817).
    assert kl_from_uniform([2 / 3, 1 / 3]) == pytest.approx(0.0566, abs=1e-4)


def test_bias_amplification_paper_example() -> None:
    assert bias_amplification([0.74, 0.12, 0.11, 0.02, 0.01]) == pytest.approx(1.08)


def test_bias_amplification_uniform_and_point_mass() -> None:
    assert bias_amplification([0.25] * 4) == pytest.approx(0.0)
    assert bias_amplification([1.0]) == 0.0
    # point mass over k groups: (1 - 1/k) + (k - 1)/k = 2 (k - 1) / k
    assert bias_amplification([1.0, 0.0, 0.0, 0.0]) == pytest.approx(1.5)


# ----------------------------------------------------------------------------------------------------
# proportions
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_proportions_observed_matches_counter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = [str(x) for x in rng.choice(["a", "b", "c", "d", "unknown"], size=57, p=[0.4, 0.3, 0.1, 0.1, 0.1])]
    names, p = proportions(labels)
    counts = Counter(labels)
    assert set(names) == set(counts)
    assert p.tolist() == pytest.approx([counts[g] / len(labels) for g in names])
    assert all(counts[a] >= counts[b] for a, b in pairwise(names)), "most frequent first"
    assert p.sum() == pytest.approx(1.0)


def test_proportions_observed_counts_unknown_as_group() -> None:
    names, p = proportions(["a", "b", "a", "unknown"])
    assert names == ["a", "b", "unknown"]
    assert p.tolist() == [0.5, 0.25, 0.25]


def test_proportions_tie_order_is_first_appearance() -> None:
    names, p = proportions(["c", "a", "b", "a", "b", "c", "d"])
    assert names == ["c", "a", "b", "d"]
    assert p.tolist() == pytest.approx([2 / 7, 2 / 7, 2 / 7, 1 / 7])
    names, _ = proportions(["b", "a", "a", "b"])
    assert names == ["b", "a"]


def test_proportions_observed_with_exclude() -> None:
    names, p = proportions(["a", "unknown", "b", "unknown", "a"], exclude=["unknown"])
    assert names == ["a", "b"]
    assert p.tolist() == pytest.approx([2 / 3, 1 / 3])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proportions_declared_matches_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = ["female", "male", "nonbinary"]
    labels = [str(x) for x in rng.choice(["female", "male", "unknown", "alien"], size=40)]
    names, p = proportions(labels, groups=groups)
    kept = [label for label in labels if label in groups]
    assert names == groups
    assert p.tolist() == pytest.approx([kept.count(g) / len(kept) for g in groups])
    assert p[2] == 0.0


def test_proportions_declared_keeps_order_and_unobserved_groups() -> None:
    names, p = proportions(["a", "b", "a", "unknown"], groups=["c", "b", "a"])
    assert names == ["c", "b", "a"]
    assert p.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3])


def test_proportions_declared_exclude_zeroes_a_group() -> None:
    names, p = proportions(["a", "b", "b", "c"], groups=["a", "b", "c"], exclude=["b"])
    assert names == ["a", "b", "c"]
    assert p.tolist() == pytest.approx([0.5, 0.0, 0.5])


@pytest.mark.parametrize(
    ("labels", "groups", "exclude"),
    [
        pytest.param([], None, (), id="empty-observed"),
        pytest.param([], ["a", "b"], (), id="empty-declared"),
        pytest.param(["unknown", "unknown"], ["a", "b"], (), id="no-declared-group"),
        pytest.param(["unknown", "other"], None, ("unknown", "other"), id="all-excluded-observed"),
        pytest.param(["a", "unknown"], ["a", "b"], ("a",), id="all-excluded-declared"),
    ],
)
def test_proportions_no_label_raises(labels, groups, exclude) -> None:
    with pytest.raises(ValueError, match=r"`labels` holds no label of the given groups"):
        proportions(labels, groups=groups, exclude=exclude)


# ----------------------------------------------------------------------------------------------------
# parity_difference
# ----------------------------------------------------------------------------------------------------


def test_parity_difference_paper_abs() -> None:
    shares = {"male": 0.24, "female": 0.34, "unknown": 0.42}
    assert parity_difference(shares, ["male"], ["female"]) == 0.1  # rounded: prints as 0.1
    assert parity_difference(shares, ["female"], ["male"]) == 0.1


def test_parity_difference_paper_is_direction_blind() -> None:
    assert parity_difference({"male": 1.0, "female": 0.0}, ["male"], ["female"]) == 1.0
    assert parity_difference({"male": 0.0, "female": 1.0}, ["male"], ["female"]) == 1.0


def test_signed_parity_with_uniform_reference() -> None:
    ref = {"male": 0.5, "female": 0.5}
    assert signed_parity({"male": 0.0, "female": 1.0}, ["male"], ["female"], ref) == -1.0
    assert signed_parity({"male": 1.0, "female": 0.0}, ["male"], ["female"], ref) == 1.0
    assert signed_parity({"male": 0.5, "female": 0.5}, ["male"], ["female"], ref) == 0.0
    # the default reference is uniform over the groups of `shares`
    assert signed_parity({"male": 0.75, "female": 0.25}, ["male"], ["female"]) == pytest.approx(0.5)


def test_signed_parity_against_skewed_reference() -> None:
    # Shares equal to the reference give 0; the sign says who is over-represented against it.
    ref = {"male": 0.6, "female": 0.4}
    assert signed_parity({"male": 0.6, "female": 0.4}, ["male"], ["female"], ref) == 0.0
    assert signed_parity({"male": 0.5, "female": 0.5}, ["male"], ["female"], ref) == pytest.approx(-0.1 / 0.6)
    assert signed_parity({"male": 0.8, "female": 0.2}, ["male"], ["female"], ref) == pytest.approx(0.2 / 0.4)
    assert signed_parity({"male": 0.0, "female": 1.0}, ["male"], ["female"], ref) == -1.0


@pytest.mark.parametrize("seed", range(20))
def test_signed_parity_stays_in_unit_interval(seed: int) -> None:
    groups = ["white", "asian", "black", "latine", "mixed", "medium"]
    shares = dict(zip(groups, _random_shares(len(groups), seed=seed).tolist(), strict=True))
    ref = dict(zip(groups, _random_shares(len(groups), seed=seed + 100).tolist(), strict=True))
    assert -1.0 <= signed_parity(shares, ["white"], None, ref) <= 1.0


def test_signed_parity_errors() -> None:
    with pytest.raises(ValueError, match="no mass on either side"):
        signed_parity({"a": 0.0, "b": 0.0, "c": 1.0}, ["a"], ["b"])
    with pytest.raises(ValueError, match="`reference` must give both sides a positive share"):
        signed_parity({"a": 0.5, "b": 0.5}, ["a"], ["b"], {"a": 1.0, "b": 0.0})


def test_parity_difference_multi_group_sides() -> None:
    shares = {"dark": 0.1, "medium": 0.3, "fair": 0.5, "unknown": 0.1}
    assert parity_difference(shares, ["dark", "medium"], ["fair"]) == pytest.approx(0.1)
    # a group absent from shares counts as 0
    assert parity_difference({"fair": 0.7}, ["dark", "medium"], ["fair"]) == pytest.approx(0.7)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_parity_difference_b_none_means_rest(seed: int) -> None:
    groups = ["white", "asian", "black", "latine", "mixed", "medium"]
    p = _random_shares(len(groups), seed=seed)
    shares = dict(zip(groups, p.tolist(), strict=True))
    rest = [g for g in groups if g != "white"]
    p_white = shares["white"]
    assert parity_difference(shares, ["white"]) == pytest.approx(abs(p_white - (1.0 - p_white)), abs=1e-11)
    assert parity_difference(shares, ["white"]) == pytest.approx(parity_difference(shares, ["white"], rest), abs=1e-11)


def test_parity_difference_b_none_rest_includes_unlisted_mass() -> None:
    # "rest" is 1 - p_a, so mass on groups not in `shares` (e.g. unknown) counts on the b side.
    assert parity_difference({"white": 0.4}, ["white"]) == pytest.approx(0.2)
    assert parity_difference({"white": 0.4, "asian": 0.1}, ["white"], ["asian"]) == pytest.approx(0.3)


def test_signed_parity_b_none_with_reference() -> None:
    k = 6
    uniform = {f"g{i}": 1.0 / k for i in range(k)}
    # all mass on g0: fully skewed towards side a, whatever the reference
    assert signed_parity({"g0": 1.0}, ["g0"], None, uniform) == 1.0
    assert signed_parity(uniform, ["g0"], None, uniform) == 0.0
    assert signed_parity({"g1": 1.0}, ["g0"], None, uniform) == -1.0


# ----------------------------------------------------------------------------------------------------
# presence metrics
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("present", PRESENCE)
class TestPresenceMetrics:
    def test_missing_rate(self, present: np.ndarray) -> None:
        assert missing_rate(present) == pytest.approx(_ref_missing_rate(present), abs=1e-12)

    def test_coverage(self, present: np.ndarray) -> None:
        assert coverage(present) == pytest.approx(_ref_coverage(present), abs=1e-12)

    def test_missing_rate_plus_coverage_is_one(self, present: np.ndarray) -> None:
        assert missing_rate(present) + coverage(present) == pytest.approx(1.0)

    def test_any_rate(self, present: np.ndarray) -> None:
        assert any_rate(present) == pytest.approx(_ref_any_rate(present), abs=1e-12)

    def test_distinct_present(self, present: np.ndarray) -> None:
        result = distinct_present(present)
        assert type(result) is int
        assert result == _ref_distinct_present(present)

    def test_list_input(self, present: np.ndarray) -> None:
        as_list = present.tolist()
        assert missing_rate(as_list) == missing_rate(present)
        assert coverage(as_list) == coverage(present)
        assert any_rate(as_list) == any_rate(present)
        assert distinct_present(as_list) == distinct_present(present)


PRESENCE_FUNCTIONS = [missing_rate, coverage, any_rate, distinct_present]


@pytest.mark.parametrize("fn", PRESENCE_FUNCTIONS)
@pytest.mark.parametrize(
    "present",
    [
        pytest.param([True, False], id="1d"),
        pytest.param(np.zeros((0, 3), dtype=bool), id="no-images"),
        pytest.param(np.zeros((3, 0), dtype=bool), id="no-terms"),
        pytest.param(np.zeros((2, 2, 2), dtype=bool), id="3d"),
        pytest.param(True, id="scalar"),
    ],
)
def test_presence_bad_shape_raises(fn, present) -> None:
    with pytest.raises(ValueError, match=r"`present` must be an \(images, terms\) matrix with both > 0"):
        fn(present)


def test_missing_rate_is_per_image_mean_not_pooled() -> None:
    # image 1 misses 1 of 2; image 2 misses 0 of 2 -> mean of fractions 0.25
    assert missing_rate([[True, False], [True, True]]) == pytest.approx(0.25)
    assert missing_rate([[True, False], [False, False]]) == pytest.approx(0.75)


def test_any_rate_counts_images_not_terms() -> None:
    assert any_rate([[True, True, True], [False, False, False]]) == 0.5
    assert any_rate([[True, False], [False, False], [False, True]]) == pytest.approx(2 / 3)


def test_distinct_present_counts_terms_not_hits() -> None:
    assert distinct_present([[True, False, False], [True, False, True]]) == 2
    assert distinct_present(np.zeros((3, 4), dtype=bool)) == 0


# ----------------------------------------------------------------------------------------------------
# contextual_association
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_contextual_association_random(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    s = rng.random(n) < 0.5
    d = rng.random(n) < 0.3
    n_s = sum(1 for x in s.tolist() if x)
    n_d = sum(1 for x in d.tolist() if x)
    expected = n_s / (n_s + n_d + 1e-8)
    assert contextual_association(s, d) == pytest.approx(expected, rel=1e-12)
    assert contextual_association(s.tolist(), d.tolist()) == contextual_association(s, d)


def test_contextual_association_paper_example() -> None:
    assert contextual_association([True, True, False], [False, True, False]) == pytest.approx(2 / 3, abs=1e-7)


def test_contextual_association_neither_is_ignored() -> None:
    base = contextual_association([True, False], [False, True])
    padded = contextual_association([True, False, False, False, False], [False, True, False, False, False])
    assert base == padded
    assert base == pytest.approx(0.5, abs=1e-7)


def test_contextual_association_both_counts_on_both_sides() -> None:
    # one caption with both: S = 1, D = 1 -> 1/2, not 1
    assert contextual_association([True], [True]) == pytest.approx(0.5, abs=1e-7)
    # S = 2, D = 1
    assert contextual_association([True, True], [True, False]) == pytest.approx(2 / 3, abs=1e-7)


def test_contextual_association_eps() -> None:
    assert CAS_EPS == 1e-8
    assert contextual_association([True], [False]) == 1 / (1 + 1e-8)
    assert contextual_association([True], [False]) < 1.0
    assert contextual_association([True], [False], eps=0.5) == pytest.approx(1 / 1.5)
    assert contextual_association([True], [False], eps=0.0) == 1.0


def test_contextual_association_no_mentions_is_zero() -> None:
    assert contextual_association([False, False], [False, False]) == 0.0
    assert contextual_association([], []) == 0.0


@pytest.mark.parametrize(
    ("s", "d"),
    [
        pytest.param([True, False], [True], id="length-mismatch"),
        pytest.param([[True]], [[True]], id="2d"),
        pytest.param(True, False, id="scalar"),
    ],
)
def test_contextual_association_shape_raises(s, d) -> None:
    with pytest.raises(ValueError, match=r"`stereotype` and `diverse` must be 1-d of equal length"):
        contextual_association(s, d)


# ----------------------------------------------------------------------------------------------------
# lexical_vendi
# ----------------------------------------------------------------------------------------------------

_VOCAB = ["a", "red", "cat", "dog", "lab", "puzzle", "Rat", "bee", "on", "flower", "soft", "light", "the"]


def _random_captions(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    seps = [" ", " ", " ", "-", "/", ";", "  "]
    out = []
    for _ in range(n):
        words = rng.choice(_VOCAB, size=int(rng.integers(1, 8)))
        text = str(words[0])
        for w in words[1:]:
            text += str(rng.choice(seps)) + str(w)
        out.append(text)
    return out


@pytest.mark.parametrize(("n", "seed"), [(2, 0), (7, 1), (20, 2), (50, 3)])
def test_lexical_vendi_matches_pair_loop(n: int, seed: int) -> None:
    texts = _random_captions(n, seed)
    assert lexical_vendi(texts) == pytest.approx(_ref_lexical_vendi(texts, None), abs=1e-12)


def test_lexical_vendi_only_first_limit_texts_count() -> None:
    texts = _random_captions(80, seed=4)
    assert PAPER_VENDI_LIMIT == 50
    result = lexical_vendi(texts)
    assert result == pytest.approx(_ref_lexical_vendi(texts, 50), abs=1e-12)
    assert result != pytest.approx(_ref_lexical_vendi(texts, None), abs=1e-9)
    # replacing the captions after the limit changes nothing
    tail_changed = texts[:50] + ["zebra unicorn"] * 30
    assert lexical_vendi(tail_changed) == result


def test_lexical_vendi_custom_limit_and_none() -> None:
    texts = _random_captions(12, seed=5)
    assert lexical_vendi(texts, limit=4) == pytest.approx(_ref_lexical_vendi(texts, 4), abs=1e-12)
    assert lexical_vendi(texts, limit=None) == pytest.approx(_ref_lexical_vendi(texts, None), abs=1e-12)
    assert lexical_vendi(texts, limit=None) != lexical_vendi(texts, limit=4)


def test_lexical_vendi_depends_on_file_order() -> None:
    same = ["a red cat"] * 50
    different = [f"word{i}" for i in range(50)]
    assert lexical_vendi(same + different) == 0.0
    assert lexical_vendi(different + same) == 1.0


def test_lexical_vendi_paper_cleaning() -> None:
    # lower case, `/ - ;` to spaces: these captions have identical word sets
    assert lexical_vendi(["A/B;c", "a b-C"]) == 0.0
    assert lexical_vendi(["Red-Cat", "red cat"]) == 0.0
    assert lexical_vendi(["A red cat", "a red-dog"]) == 0.5
    # other punctuation is kept: "cat." and "cat" are different words
    assert lexical_vendi(["cat.", "cat"]) == 1.0


def test_lexical_vendi_identical_and_disjoint() -> None:
    assert lexical_vendi(["x y", "x y", "y x"]) == 0.0
    assert lexical_vendi(["x", "y", "z"]) == 1.0


def test_lexical_vendi_empty_texts_are_identical() -> None:
    assert lexical_vendi(["", "  "]) == 0.0


@pytest.mark.parametrize(
    ("texts", "limit", "got"),
    [
        pytest.param([], 50, 0, id="empty"),
        pytest.param(["one caption"], 50, 1, id="one"),
        pytest.param(["a", "b", "c"], 1, 1, id="limit-1"),
        pytest.param(["a", "b"], 0, 0, id="limit-0"),
        pytest.param(["only"], None, 1, id="one-no-limit"),
    ],
)
def test_lexical_vendi_fewer_than_two_raises(texts, limit, got) -> None:
    with pytest.raises(ValueError, match=rf"`texts` needs at least 2 texts for a pairwise score, got {got}"):
        lexical_vendi(texts, limit=limit)


# ----------------------------------------------------------------------------------------------------
# composite_score
# ----------------------------------------------------------------------------------------------------


def test_composite_paper_example() -> None:
    # beauty: B = (0.48 + 1 - 0.5246) / 2, then (B + CAS) / 2
    expected = ((0.48 + 1 - 0.5246) / 2 + 0.5257) / 2
    assert composite_score(0.5246, 0.48, 0.5257, mode="paper") == pytest.approx(expected)
    assert round(composite_score(0.5246, 0.48, 0.5257, mode="paper"), 4) == 0.5017


def test_composite_strict_example() -> None:
    expected = (0.48 + (1 - 0.5246) + 0.5257) / 3
    assert composite_score(0.5246, 0.48, 0.5257, mode="strict") == pytest.approx(expected)
    assert round(composite_score(0.5246, 0.48, 0.5257), 4) == 0.4937  # strict is the default


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_composite_random_both_modes(seed: int) -> None:
    h, pd, c = (float(x) for x in np.random.default_rng(seed).random(3))
    assert composite_score(h, pd, c, mode="paper") == pytest.approx(((pd + 1 - h) / 2 + c) / 2)
    assert composite_score(h, pd, c, mode="strict") == pytest.approx((pd + 1 - h + c) / 3)


def test_composite_paper_missing_terms() -> None:
    # doctor: B only; animal: 1 - H_norm; nature: (CAS + 1 - H_norm) / 2
    assert composite_score(0.8, 0.3, None, mode="paper") == pytest.approx((0.3 + 0.2) / 2)
    assert composite_score(0.8, None, None, mode="paper") == pytest.approx(0.2)
    assert composite_score(0.8, None, 0.6, mode="paper") == pytest.approx((0.2 + 0.6) / 2)


def test_composite_strict_drops_missing_terms() -> None:
    assert composite_score(0.8, 0.3, None, mode="strict") == pytest.approx((0.3 + 0.2) / 2)
    assert composite_score(0.8, None, None, mode="strict") == pytest.approx(0.2)
    assert composite_score(0.8, None, 0.6, mode="strict") == pytest.approx((0.2 + 0.6) / 2)


def test_composite_strict_uses_abs_of_signed_parity() -> None:
    assert composite_score(0.5, -0.4, 0.2, mode="strict") == pytest.approx((0.4 + 0.5 + 0.2) / 3)
    assert composite_score(0.5, -0.4, 0.2, mode="strict") == composite_score(0.5, 0.4, 0.2, mode="strict")


def test_composite_modes_differ_with_cas() -> None:
    assert composite_score(0.5, 0.9, 0.1, mode="paper") != pytest.approx(composite_score(0.5, 0.9, 0.1, mode="strict"))


def test_composite_bounds() -> None:
    assert composite_score(1.0, 0.0, 0.0, mode="paper") == 0.0
    assert composite_score(1.0, 0.0, 0.0, mode="strict") == 0.0
    assert composite_score(0.0, 1.0, 1.0, mode="paper") == 1.0
    assert composite_score(0.0, 1.0, 1.0, mode="strict") == 1.0
