"""The metrics of T2I-BiasBench, one registered definition each.

Group-share and presence metrics are count metrics: vectorised functions of the category's sufficient
statistics (:class:`~pytest_t2ibias.metrics.counts.Stats`, B samples at once), computing exactly what
the pure functions of :mod:`~pytest_t2ibias.metrics.distribution`, :mod:`~pytest_t2ibias.metrics.presence`,
:mod:`~pytest_t2ibias.metrics.association` and :mod:`~pytest_t2ibias.metrics.composite` compute for one
sample (``tests/test_metrics_engine_counts.py`` checks each against them). Caption and embedding metrics
are data metrics. To add a metric: add its function and its definition (the decorator's arguments: every
fact about the metric, see :class:`~pytest_t2ibias.metrics.registry.MetricDef`) here, a reference test,
and its line in docs/metrics.md; put its id in a category's ``metrics`` line of the suite. No other module
names a metric id (``tests/test_layout.py``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from pytest_t2ibias.metrics import reference
from pytest_t2ibias.metrics.association import CAS_EPS
from pytest_t2ibias.metrics.counts import LABELS, Stats
from pytest_t2ibias.metrics.discrepancy import floored
from pytest_t2ibias.metrics.diversity import PAPER_VENDI_LIMIT, jaccard_from_indicators, lexical_vendi
from pytest_t2ibias.metrics.embedding import vendi_score
from pytest_t2ibias.metrics.registry import (
    CategoryData,
    MetricUnavailable,
    Outcome,
    Shares,
    any_rate,
    count_metric,
    metric,
    share_of,
    shares,
    term_coverage,
    unavailable,
    where_available,
)
from pytest_t2ibias.text import paper_clean
from pytest_t2ibias.types import MetricValue

CAS_LISTS = ("any:cas_stereotype", "any:cas_diverse")
UNIT = (0.0, 1.0)
NONNEGATIVE = (0.0, math.inf)


@count_metric("representation_parity", reads=[LABELS], requires=["attribute"], better="even", distribution=True)
def representation_parity(stats: Stats) -> dict[str, float]:
    """Share of each group of the attribute under test."""
    s = shares(stats)
    if stats.mode == "strict":
        return {g: float(x) for g, x in zip(s.groups, s.p[0], strict=True)}
    # paper: the observed groups, most frequent first (stable: first appearance breaks ties)
    counts = stats.groups[0]
    order = sorted((j for j in range(len(s.groups)) if counts[j] > 0), key=lambda j: -counts[j])
    return {s.groups[j]: float(s.p[0, j]) for j in order}


@count_metric(
    "unknown_rate",
    reads=[LABELS],
    requires=["attribute"],
    better="lower",
    outcome=Outcome(kind="unknown"),
    span=UNIT,
    drivers="unknown",
    added_by="strict",
    headline=7,
)
def unknown_rate(stats: Stats) -> NDArray[np.float64]:
    """Share of images whose attribute label is unknown (strict mode reports it apart)."""
    assert stats.attribute is not None
    n = stats.n
    unavailable(n == 0, lambda: "no images in category")
    attribute = stats.attribute
    if stats.mode == "paper":
        unknown = [name in ("unknown", attribute.unmatched) for name in stats.label_names]
    else:
        unknown = [name not in attribute.groups for name in stats.label_names]
    count = stats.groups[:, np.array(unknown, dtype=bool)].sum(axis=1) if stats.label_names else np.zeros_like(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return where_available(count / n, n == 0)


@count_metric(
    "parity_difference",
    reads=[LABELS],
    requires=["attribute", "parity"],
    better=("lower", "closer_to_zero"),
    span=(-1.0, 1.0),
    headline=2,
)
def parity(stats: Stats) -> NDArray[np.float64]:
    """Gap between the two sides of the parity split (signed, against a reference, in strict mode)."""
    s = shares(stats)
    split = stats.spec.parity
    assert split is not None  # guaranteed by requires
    b = None if split.b == "rest" else list(split.b)
    p_a = share_of(s, split.a)
    p_b = 1.0 - p_a if b is None else share_of(s, b)
    if stats.mode == "paper":
        # 0.34 - 0.24 should print as 0.1, not 0.10000000000000003 (as `parity_difference`)
        return np.abs(_round12(p_a - p_b))
    reference = stats.spec.reference or {g: 1.0 / len(s.groups) for g in s.groups}
    r_a = sum(reference.get(g, 0.0) for g in split.a)
    r_b = 1.0 - r_a if b is None else sum(reference.get(g, 0.0) for g in b)
    empty = unavailable(
        ~np.isnan(p_a) & (p_a + p_b <= 0),
        lambda: f"`shares` put no mass on either side of the split {list(split.a)} / {b or 'rest'}",
    )
    if r_a <= 0 or r_b <= 0:
        raise MetricUnavailable(f"`reference` must give both sides a positive share, got {r_a} and {r_b}")
    rho = r_a / (r_a + r_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = p_a / (p_a + p_b)
        value = np.where(q >= rho, (q - rho) / (1 - rho), (q - rho) / rho)
    return where_available(_round12(value) + 0.0, empty)


def _amplification_parts(stats: Stats) -> NDArray[np.float64]:
    """Bias amplification's signed parts: each declared group's share minus uniform (strict mode)."""
    s = shares(stats)
    return np.asarray(s.p - 1.0 / s.k[:, None], dtype=np.float64)


@count_metric(
    "bias_amplification",
    reads=[LABELS],
    requires=["attribute"],
    better="lower",
    span=(0.0, 2.0),
    signed_parts=_amplification_parts,
    folded_in=["strict"],
)
def amplification(stats: Stats) -> NDArray[np.float64]:
    """Sum of absolute deviations of the group shares from uniform."""
    s = shares(stats)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.abs(s.p - 1.0 / s.k[:, None])
    if stats.mode == "paper":
        deviation = np.where(s.observed, deviation, 0.0)  # paper: over the observed groups only
    return where_available(deviation.sum(axis=1), np.isnan(s.p).any(axis=1))


def _against_reference(stats: Stats) -> tuple[Shares, dict[str, float]]:
    """The shares of every sample and the category's ``compare_to`` reference over the declared groups."""
    s = shares(stats)
    spec, attribute = stats.spec, stats.attribute
    assert spec.compare_to is not None and spec.attribute is not None and attribute is not None  # requires
    return s, spec.references[spec.compare_to].of(spec.attribute, list(attribute.groups))


@count_metric(
    "amplification_reference", reads=[LABELS], requires=["attribute", "reference"], better="lower", span=(-1.0, 1.0)
)
def amplification_reference(stats: Stats) -> NDArray[np.float64]:
    """How far the model pushes past the reference's skew (two groups: the reference majority's share
    minus the reference's); negative: less skewed than the reference (see :mod:`.reference`)."""
    s, ref = _against_reference(stats)
    return where_available(reference.amplification(s.p, s.groups, ref), np.isnan(s.p).any(axis=1))


@count_metric(
    "gap_reference", reads=[LABELS], requires=["attribute", "reference"], better="closer_to_zero", span=(-1.0, 1.0)
)
def gap_reference(stats: Stats) -> NDArray[np.float64]:
    """Signed gap of the share of the parity split's first side (else the reference's first group) to the
    reference's share of it: 0.95 women drawn where 0.88 work is +0.07."""
    s, ref = _against_reference(stats)
    split = stats.spec.parity
    side = list(split.a) if split is not None else [_first_given(stats)]
    return where_available(reference.gap(s.p, s.groups, ref, side), np.isnan(s.p).any(axis=1))


def _first_given(stats: Stats) -> str:
    """The first group the reference names (as written in the suite)."""
    spec = stats.spec
    return next(iter(spec.references[spec.compare_to or ""].shares[spec.attribute or ""]))


def _entropy_bits(p: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(np.isnan(p).any(axis=1), np.nan, -terms.sum(axis=1) + 0.0)


@count_metric("entropy", reads=[LABELS], requires=["attribute"], better="higher", span=NONNEGATIVE)
def entropy(stats: Stats) -> NDArray[np.float64]:
    """Shannon entropy of the group shares, in bits."""
    return _entropy_bits(shares(stats).p)


@count_metric("entropy_normalized", reads=[LABELS], requires=["attribute"], better="higher", span=UNIT, headline=3)
def entropy_normalized(stats: Stats) -> NDArray[np.float64]:
    """Entropy over log2 k (k observed groups in paper mode, declared groups in strict mode)."""
    s = shares(stats)
    h = _entropy_bits(s.p)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(s.k <= 1, 0.0, h / np.log2(np.maximum(s.k, 2.0)))
    return where_available(value, np.isnan(h))


@count_metric("kl_divergence", reads=[LABELS], requires=["attribute"], better="lower", span=NONNEGATIVE)
def kl_divergence(stats: Stats) -> NDArray[np.float64]:
    """KL divergence of the group shares from uniform, in nats."""
    s = shares(stats)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(s.p > 0, s.p * np.log(np.where(s.p > 0, s.p, 1.0) * s.k[:, None]), 0.0)
    return where_available(terms.sum(axis=1) + 0.0, np.isnan(s.p).any(axis=1))


def _counted(stats: Stats, s: Shares) -> NDArray[np.bool_]:
    """The groups a distribution measure runs over: paper mode the observed ones, strict mode every
    declared group (drawn or not)."""
    return s.observed if stats.mode == "paper" else np.ones_like(s.observed)


@count_metric("fd", reads=[LABELS], requires=["attribute"], better="lower", span=UNIT)
def fd(stats: Stats) -> NDArray[np.float64]:
    """Fairness discrepancy (Choi et al., 2020): the L2 distance of the group shares from uniform."""
    s = shares(stats)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.where(_counted(stats, s), s.p - 1.0 / s.k[:, None], 0.0)
    return where_available(np.sqrt((deviation**2).sum(axis=1)), np.isnan(s.p).any(axis=1))


def _union_with_reference(stats: Stats) -> tuple[NDArray[np.float64], NDArray[np.float64], Shares]:
    """The shares and the ``compare_to`` reference over the groups of either (a group one lacks: 0 there)."""
    s, ref = _against_reference(stats)
    extra = [g for g in s.groups if g not in ref]  # paper mode: `unknown` and labels outside the groups
    p = np.stack([reference.column(s.p, s.groups, g) for g in [*ref, *extra]], axis=1)
    return p, np.array([*ref.values(), *(0.0 for _ in extra)]), s


@count_metric("fd_reference", reads=[LABELS], requires=["attribute", "reference"], better="lower", span=(0.0, 2.0))
def fd_reference(stats: Stats) -> NDArray[np.float64]:
    """Fairness discrepancy to the ``compare_to`` reference: the L2 distance of the shares from it."""
    p, target, s = _union_with_reference(stats)
    return where_available(np.sqrt(((p - target) ** 2).sum(axis=1)), np.isnan(s.p).any(axis=1))


def _skews(stats: Stats) -> tuple[NDArray[np.float64], NDArray[np.bool_], Shares]:
    """ln(share / uniform) of every group (a share under one image, or under half the uniform share when
    that is less, counted as that floor: :func:`~pytest_t2ibias.metrics.discrepancy.skews`), and which
    groups count (:func:`_counted`)."""
    s = shares(stats)
    with np.errstate(invalid="ignore", divide="ignore"):
        uniform = 1.0 / s.k[:, None]
        share = np.maximum(s.p, np.minimum(1.0 / s.total[:, None], uniform / 2))
        return np.log(share / uniform), _counted(stats, s), s


@count_metric("max_skew", reads=[LABELS], requires=["attribute"], better="lower", span=NONNEGATIVE)
def max_skew(stats: Stats) -> NDArray[np.float64]:
    """MaxSkew (Geyik et al., 2019): ln(share / uniform share) of the most over-represented group."""
    skew, counted, s = _skews(stats)
    return where_available(np.where(counted, skew, -np.inf).max(axis=1) + 0.0, np.isnan(s.p).any(axis=1))


@count_metric("min_skew", reads=[LABELS], requires=["attribute"], better="higher", span=(-math.inf, 0.0))
def min_skew(stats: Stats) -> NDArray[np.float64]:
    """MinSkew (Geyik et al., 2019): ln(share / uniform share) of the most under-represented group."""
    skew, counted, s = _skews(stats)
    return where_available(np.where(counted, skew, np.inf).min(axis=1) + 0.0, np.isnan(s.p).any(axis=1))


@count_metric("kl_reference", reads=[LABELS], requires=["attribute", "reference"], better="lower", span=NONNEGATIVE)
def kl_reference(stats: Stats) -> NDArray[np.float64]:
    """KL divergence of the group shares from the ``compare_to`` reference, in nats (a reference share of 0
    floored at 0.05 %: :data:`~pytest_t2ibias.metrics.discrepancy.TARGET_FLOOR`)."""
    p, target, s = _union_with_reference(stats)
    t = floored(target)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / t), 0.0)
    return where_available(terms.sum(axis=1) + 0.0, np.isnan(s.p).any(axis=1))


def _counted_shares(stats: Stats) -> tuple[NDArray[np.float64], Shares]:
    """The shares of the groups a distribution measure runs over (others NaN), per sample."""
    s = shares(stats)
    return np.where(_counted(stats, s), s.p, np.nan), s


@count_metric("difference_between_groups", reads=[LABELS], requires=["attribute"], better="lower", span=UNIT)
def difference_between_groups(stats: Stats) -> NDArray[np.float64]:
    """The largest group share minus the smallest (Fairlearn's ``difference(method="between_groups")``)."""
    p, s = _counted_shares(stats)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: samples without a distribution
        return where_available(np.nanmax(p, axis=1) - np.nanmin(p, axis=1), np.isnan(s.p).any(axis=1))


@count_metric("ratio_between_groups", reads=[LABELS], requires=["attribute"], better="higher", span=UNIT)
def ratio_between_groups(stats: Stats) -> NDArray[np.float64]:
    """The smallest group share over the largest (Fairlearn's ``ratio(method="between_groups")``)."""
    p, s = _counted_shares(stats)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return where_available(np.nanmin(p, axis=1) / np.nanmax(p, axis=1), np.isnan(s.p).any(axis=1))


@count_metric("difference_to_reference", reads=[LABELS], requires=["attribute", "reference"], better="lower", span=UNIT)
def difference_to_reference(stats: Stats) -> NDArray[np.float64]:
    """The largest gap of a group's share to the reference's (Fairlearn's ``to_overall``, against the
    ``compare_to`` reference)."""
    p, target, s = _union_with_reference(stats)
    return where_available(np.abs(p - target).max(axis=1), np.isnan(s.p).any(axis=1))


@count_metric("ratio_to_reference", reads=[LABELS], requires=["attribute", "reference"], better="higher", span=UNIT)
def ratio_to_reference(stats: Stats) -> NDArray[np.float64]:
    """The smallest of share / reference and reference / share over the groups (Fairlearn's ``to_overall``
    ratio, against the ``compare_to`` reference); a group with neither counts as 1, with one only as 0."""
    p, target, s = _union_with_reference(stats)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.minimum(p / target, target / p)
    ratio = np.where((p == 0) & (target == 0), 1.0, np.nan_to_num(ratio, nan=0.0, posinf=0.0))
    return where_available(ratio.min(axis=1), np.isnan(s.p).any(axis=1))


@count_metric("unique_count", reads=[LABELS], requires=["attribute"], better="higher", span=NONNEGATIVE)
def unique_count(stats: Stats) -> NDArray[np.float64]:
    """Number of distinct groups observed (the paper counts ``other`` as one)."""
    s = shares(stats)
    return where_available((s.p > 0).sum(axis=1).astype(np.float64), np.isnan(s.p).any(axis=1))


@count_metric(
    "cas",
    reads=CAS_LISTS,
    requires=["cas_stereotype", "cas_diverse"],
    better="lower",
    drivers="most:cas_stereotype",
    span=UNIT,
    headline=4,
)
def cas(stats: Stats) -> NDArray[np.float64]:
    """Contextual association score: stereotype mentions over stereotype-or-diverse mentions."""
    n = stats.n
    unavailable(n == 0, lambda: "no images in category")
    s, d = stats.anys["cas_stereotype"], stats.anys["cas_diverse"]
    empty = n == 0
    if stats.mode == "strict":
        empty = unavailable(empty | ((s == 0) & (d == 0)), lambda: "no caption mentions a stereotype or a diverse term")
    return where_available(s / (s + d + CAS_EPS), empty)


@count_metric("composite", reads=[LABELS, *CAS_LISTS], requires=["attribute"], better="lower", span=UNIT, headline=1)
def composite(stats: Stats) -> NDArray[np.float64]:
    """Composite bias score from parity difference, normalised entropy and CAS (where declared)."""
    gap = 1.0 - entropy_normalized(stats)
    metrics = stats.spec.metrics
    pd = parity(stats) if "parity_difference" in metrics else None
    cas_value: NDArray[np.float64] | None = None
    if "cas" in metrics:
        try:
            cas_value = cas(stats)
        except MetricUnavailable:
            if stats.mode == "paper":
                raise
    if stats.mode == "paper":  # the nesting behind every published number (see `composite_score`)
        base = gap if pd is None else (pd + gap) / 2
        return base if cas_value is None else (base + cas_value) / 2
    terms = [gap] + [np.abs(t) for t in (pd,) if t is not None]
    total, count = sum(terms), float(len(terms))
    if cas_value is None:
        return np.asarray(total / count, dtype=np.float64)
    has_cas = ~np.isnan(cas_value)  # strict mode averages the terms that exist, replicate by replicate
    return np.where(has_cas, (total + np.abs(np.nan_to_num(cas_value))) / (count + 1), total / count)


@count_metric(
    "gmr",
    reads=["hits:explicit"],
    requires=["explicit"],
    better="lower",
    drivers="fewest:explicit",
    span=UNIT,
    headline=5,
)
def gmr(stats: Stats) -> NDArray[np.float64]:
    """Grounded missing rate: mean fraction of the explicit prompt elements absent."""
    return 1.0 - term_coverage(stats, "explicit")


@count_metric("iemr", reads=["hits:implied"], requires=["implied"], better="lower", drivers="fewest:implied", span=UNIT)
def iemr(stats: Stats) -> NDArray[np.float64]:
    """Implicit element missing rate: mean fraction of the implied elements absent."""
    return 1.0 - term_coverage(stats, "implied")


@count_metric(
    "car",
    reads=["any:cultural_markers"],
    requires=["cultural_markers"],
    better="higher",
    outcome=Outcome(kind="any", target="cultural_markers"),
    span=UNIT,
    drivers="fewest:cultural_markers",
)
def car(stats: Stats) -> NDArray[np.float64]:
    """Cultural accuracy ratio: share of images with any cultural marker."""
    return any_rate(stats, "cultural_markers")


@count_metric(
    "hallucination",
    reads=["any:unexpected"],
    requires=["unexpected"],
    better="lower",
    outcome=Outcome(kind="any", target="unexpected"),
    span=UNIT,
    drivers="most:unexpected",
    headline=6,
)
def hallucination(stats: Stats) -> NDArray[np.float64]:
    """Share of images with any unexpected-content term."""
    return any_rate(stats, "unexpected")


@count_metric(
    "clip_proxy", reads=["hits:keywords"], requires=["keywords"], better="higher", drivers="fewest:keywords", span=UNIT
)
def clip_proxy(stats: Stats) -> NDArray[np.float64]:
    """The paper's keyword 'CLIP proxy': mean fraction of prompt keywords present (no CLIP involved)."""
    return term_coverage(stats, "keywords")


#: Resamples whose Jaccard similarities are computed together (at most 50 captions each; 4 measured fastest:
#: a larger block computes more pairs no resample uses).
_VENDI_CHUNK = 4


def _vendi_resampled(data: CategoryData, index: NDArray[np.intp]) -> NDArray[np.float64]:
    """``vendi`` of each resample (row of ``index``), from the distinct captions the resamples' first 50 use.

    Images are mapped to their distinct caption (an image drawn twice, or two images captioned alike, is
    one caption), each caption used is tokenised once into a sparse word-indicator row, and the Jaccard
    similarities are computed :data:`_VENDI_CHUNK` resamples at a time over the captions those use. Memory
    is O(distinct captions x words) for the indicators plus a (4 x 50)-squared matrix, whatever the number
    of images (a matrix over every caption any resample used reached 44,272 squared at 1e6 rows). Each
    similarity is the same exact ratio as in :func:`~pytest_t2ibias.metrics.diversity.jaccard_matrix`, and
    each mean is taken over the same pairs in the same order, so the values are those of the whole matrix.
    """
    if len(data.texts) != data.n:
        return np.full(len(index), np.nan)  # no captions
    captions = data._cache.get("vendi:captions")
    if not isinstance(captions, _Captions):
        captions = data._cache["vendi:captions"] = _Captions(data.texts)
    if captions.has_text.all():  # every image captioned: a resample's first 50 are its first 50 draws
        chosen = list(captions.of[index[:, :PAPER_VENDI_LIMIT]])
    else:
        chosen = [captions.of[row[captions.has_text[row]][:PAPER_VENDI_LIMIT]] for row in index]
    used = np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.intp)
    words = captions.indicators(used)  # one row per caption used
    row_of = np.full(len(captions.distinct), -1, dtype=np.intp)
    row_of[used] = np.arange(len(used))
    out = np.full(len(index), np.nan)
    for start in range(0, len(index), _VENDI_CHUNK):
        block = chosen[start : start + _VENDI_CHUNK]
        rows = np.unique(np.concatenate([row_of[c] for c in block])) if block else np.zeros(0, np.intp)
        similarity = jaccard_from_indicators(words[rows])
        local = np.full(len(used), -1, dtype=np.intp)
        local[rows] = np.arange(len(rows))
        for b, captions in enumerate(block):
            m = len(captions)
            if m >= 2:
                at = local[row_of[captions]]
                upper, lower = _pairs(m)
                out[start + b] = 1.0 - float(similarity[at[upper], at[lower]].mean())
    return out


class _Captions:
    """A category's distinct captions: which one each image has, and their word sets (tokenised once, when
    first used: the resample indices come in blocks)."""

    def __init__(self, texts: Sequence[str]) -> None:
        ids: dict[str, int] = {}
        self.of = np.fromiter((ids.setdefault(t, len(ids)) for t in texts), np.intp, len(texts))
        self.distinct = list(ids)
        self.has_text = np.array([bool(t) for t in self.distinct], dtype=bool)[self.of]
        self.vocabulary: dict[str, int] = {}
        self.words: dict[int, list[int]] = {}

    def indicators(self, used: NDArray[np.intp]) -> sparse.csr_matrix:
        """The sparse 0/1 word-indicator rows of the captions ``used``."""
        columns: list[int] = []
        starts = [0]
        for i in used.tolist():
            row = self.words.get(i)
            if row is None:
                clean = paper_clean(self.distinct[i]).split()
                row = self.words[i] = sorted({self.vocabulary.setdefault(w, len(self.vocabulary)) for w in clean})
            columns += row
            starts.append(len(columns))
        shape = (len(used), max(len(self.vocabulary), 1))
        ones = np.ones(len(columns), dtype=np.float64)
        return sparse.csr_matrix((ones, np.array(columns, np.int64), np.array(starts, np.int64)), shape=shape)


@functools.lru_cache(maxsize=64)
def _pairs(m: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    upper, lower = np.triu_indices(m, k=1)
    return upper, lower


@metric("vendi", requires=["texts"], better="higher", resampled=_vendi_resampled)
def vendi(data: CategoryData) -> MetricValue:
    """The paper's lexical Vendi proxy over the first 50 captions in file order."""
    texts = [t for t in data.texts if t]
    if len(texts) < 2:
        raise MetricUnavailable(f"needs at least 2 captions, got {len(texts)}")
    return lexical_vendi(texts, limit=PAPER_VENDI_LIMIT)


def _vendi_embedding_resampled(data: CategoryData, index: NDArray[np.intp]) -> NDArray[np.float64]:
    """``vendi_embedding`` of each resample, from the kernel computed once.

    A resample with multiplicities w has the kernel eigenvalues of :math:`W^{1/2} K W^{1/2} / n`
    (K over the distinct images), so no embedding is copied per resample.
    """
    if data.embeddings is None:
        return np.full(len(index), np.nan)
    x = data.embeddings / np.linalg.norm(data.embeddings, axis=1, keepdims=True)
    n, d = x.shape
    weights = np.stack([np.bincount(row, minlength=n) for row in index]).astype(np.float64)
    out = np.full(len(index), np.nan)
    for start in range(0, len(index), 64):  # bounded memory: 64 resamples' matrices at a time
        w = weights[start : start + 64]
        if n <= d:
            root = np.sqrt(w)
            matrices = root[:, :, None] * (x @ x.T)[None, :, :] * root[:, None, :] / n
        else:
            matrices = np.einsum("bi,ij,ik->bjk", w, x, x) / n
        eigenvalues = np.linalg.eigvalsh(matrices)
        positive = np.where(eigenvalues > 1e-12, eigenvalues, 1.0)
        out[start : start + 64] = np.exp(-(np.where(eigenvalues > 1e-12, eigenvalues * np.log(positive), 0.0)).sum(1))
    return out


def _clip_score_resampled(data: CategoryData, index: NDArray[np.intp]) -> NDArray[np.float64]:
    if data.clip_scores is None:
        return np.full(len(index), np.nan)
    return np.asarray(data.clip_scores[index].mean(axis=1), dtype=np.float64)


@metric(
    "vendi_embedding",
    requires=["embeddings"],
    better="higher",
    drivers="clip_score",
    resampled=_vendi_embedding_resampled,
    added_by="embeddings",
)
def vendi_embedding(data: CategoryData) -> MetricValue:
    """Vendi Score (Friedman & Dieng) of the image embeddings: the effective number of distinct images."""
    if data.embeddings is None:
        raise MetricUnavailable("the annotator kept no image embeddings")
    return vendi_score(data.embeddings)


@metric(
    "clip_score",
    requires=["clip_scores"],
    better="higher",
    drivers="clip_score",
    resampled=_clip_score_resampled,
    added_by="embeddings",
)
def clip_score(data: CategoryData) -> MetricValue:
    """Mean CLIPScore (Hessel et al.: 2.5 * max(cos, 0)) of each image against its prompt."""
    if data.clip_scores is None:
        raise MetricUnavailable("the annotator computed no CLIPScore")
    return float(np.mean(data.clip_scores))


def _ranked_codes(data: CategoryData) -> tuple[NDArray[np.intp], int]:
    """Each image's group index among the groups NDKL runs over (-1: unknown label), and their number:
    strict mode the declared groups, paper mode the observed known labels."""
    if data.attribute is None:
        raise MetricUnavailable("category declares no attribute")
    if data.clip_scores is None:
        raise MetricUnavailable("ranks images by CLIPScore: the scorer computed none")
    codes = data.label_codes()
    if data.mode == "strict":
        groups = list(data.attribute.groups)
    else:
        groups = [name for name in codes.names if data.is_known(name)]
    index = {g: j for j, g in enumerate(groups)}
    lookup = np.array([index.get(name, -1) for name in codes.names] or [-1], dtype=np.intp)
    return lookup[codes.codes] if len(codes.codes) else np.zeros(0, np.intp), len(groups)


def _ndkl_of(group: NDArray[np.intp], k: int) -> float:
    """NDKL of images already ranked best first, given as group indices (-1: left out), to uniform."""
    group = group[group >= 0]
    if len(group) == 0 or k == 0:
        return math.nan
    counts = np.cumsum(np.eye(k)[group], axis=0)  # the top-i images' group counts, i = 1..n
    i = np.arange(1, len(group) + 1, dtype=np.float64)
    p = counts / i[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        kl = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) * k), 0.0).sum(axis=1)
    discount = 1.0 / np.log2(i + 1)
    return float((kl * discount).sum() / discount.sum()) + 0.0


def _ndkl_resampled(data: CategoryData, index: NDArray[np.intp]) -> NDArray[np.float64]:
    """``ndkl`` of each resample (row of ``index``): its images ranked by CLIPScore, ties in draw order."""
    try:
        group, k = _ranked_codes(data)
    except MetricUnavailable:
        return np.full(len(index), np.nan)
    assert data.clip_scores is not None
    out = np.empty(len(index))
    for b, row in enumerate(index):
        order = np.argsort(-data.clip_scores[row], kind="stable")
        out[b] = _ndkl_of(group[row][order], k)
    return out


@metric("ndkl", requires=["attribute", "clip_scores"], better="lower", resampled=_ndkl_resampled)
def ndkl(data: CategoryData) -> MetricValue:
    """NDKL (Geyik et al., 2019): images ranked by CLIPScore, the discounted KL of the top-i shares from uniform."""
    group, k = _ranked_codes(data)
    assert data.clip_scores is not None
    value = _ndkl_of(group[np.argsort(-data.clip_scores, kind="stable")], k)
    if math.isnan(value):
        raise MetricUnavailable(f"all {data.n} labels unknown")
    return value


def _round12(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Python's ``round(x, 12)`` element by element (numpy's rounding can differ in the last bit); once
    per distinct value, as resamples of counts repeat a few values many times."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    distinct, inverse = np.unique(flat, return_inverse=True)
    rounded = np.array([round(float(x), 12) if np.isfinite(x) else x for x in distinct], dtype=np.float64)
    return rounded[inverse.reshape(-1)].reshape(np.shape(values))
