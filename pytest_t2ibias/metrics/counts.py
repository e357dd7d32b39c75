"""Sufficient statistics: the counts every group-share and presence metric is a function of.

Group-share metrics (shares, parity, entropy, KL, bias amplification) depend on the images only through
the count of each label; presence metrics through the number of images with any term of a list and the
total of terms found; the composite through both. So images with the same label and the same number of
terms found per list are exchangeable: the engine collapses them into distinct *types* with counts
(:class:`TypeTable`) and resamples types by multinomial draws, vectorised over every bootstrap replicate
at once, instead of re-running Python per replicate.

A :class:`Stats` holds those counts for B samples at once (B = 1 for the point values, B = the number of
replicates for an interval); every array has that leading axis.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.data import CategoryData

if TYPE_CHECKING:
    from pytest_t2ibias.suites.schema import Attribute, Category
    from pytest_t2ibias.types import Mode

#: What a count metric can read: the label counts, and per term list the images with any term
#: (``any:<list>``) or the total of terms found (``hits:<list>``).
LABELS = "labels"
#: Prefix of a one-term feature, ``term:<list>:<index>`` (the presence corrections of a scorer card read them).
TERM = "term"


@dataclass(frozen=True)
class Stats:
    """The sufficient statistics of one category for B samples (rows).

    ``groups[b, j]`` counts label ``label_names[j]`` in sample b; ``anys[list][b]`` the images with any
    term of the list; ``hits[list][b]`` the terms found, summed over images. Fields a metric does not
    read may be missing (empty mappings, ``groups`` of width 0).
    """

    spec: Category
    attribute: Attribute | None
    mode: Mode
    label_names: tuple[str, ...]
    n: NDArray[np.float64]
    groups: NDArray[np.float64]
    anys: Mapping[str, NDArray[np.float64]]
    hits: Mapping[str, NDArray[np.float64]]
    sizes: Mapping[str, int]

    @property
    def samples(self) -> int:
        return int(self.n.shape[0])


@dataclass(frozen=True)
class TypeTable:
    """Images collapsed into distinct types over some features, with how many images each type has.

    ``values[feature][t]`` is the feature's value for type t (a label code, a term count, or 0/1 for
    any-term); ``counts[t]`` the images of type t.
    """

    values: Mapping[str, NDArray[np.int64]]
    counts: NDArray[np.int64]
    #: the label vocabulary the ``labels`` values index (default: the data's own, observed labels)
    label_names: tuple[str, ...] | None = None


def image_features(data: CategoryData, feature: str) -> NDArray[np.int64]:
    """One per-image feature column (cached on ``data``): label codes, terms found, any-term, or one term."""
    key = "feature:" + feature
    cached = data._cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if feature == LABELS:
        column = data.label_codes().codes.astype(np.int64)
    elif feature.startswith(TERM + ":"):  # term:<list>:<index>: whether that one term was found
        list_name, _, index = feature.removeprefix(TERM + ":").rpartition(":")
        column = data.present[list_name][:, int(index)].astype(np.int64)
    else:
        kind, _, list_name = feature.partition(":")
        hits = data.present[list_name].sum(axis=1, dtype=np.int64)
        column = hits if kind == "hits" else (hits > 0).astype(np.int64)
    data._cache[key] = column
    return column


def type_table(data: CategoryData, features: tuple[str, ...]) -> TypeTable:
    """The distinct combinations of ``features`` among the images, with their counts (cached)."""
    key = "types:" + ",".join(features)
    cached = data._cache.get(key)
    if isinstance(cached, TypeTable):
        return cached
    columns = [image_features(data, f) for f in features]
    if data.n == 0:
        table = TypeTable({f: np.zeros(0, dtype=np.int64) for f in features}, np.zeros(0, dtype=np.int64))
    elif not columns:
        table = TypeTable({}, np.array([data.n], dtype=np.int64))
    else:
        radix = [int(c.max()) + 1 for c in columns]
        if np.prod(np.array(radix, dtype=object)) < 2**62:
            combined = np.zeros(data.n, dtype=np.int64)
            for column, base in zip(columns, radix, strict=True):  # mixed radix: one integer per combination
                combined = combined * base + column
            _, first, counts = np.unique(combined, return_index=True, return_counts=True)
        else:
            _, first, counts = np.unique(np.stack(columns, axis=1), axis=0, return_index=True, return_counts=True)
        table = TypeTable({f: c[first] for f, c in zip(features, columns, strict=True)}, counts.astype(np.int64))
    data._cache[key] = table
    return table


def stats_of(data: CategoryData, table: TypeTable, counts: NDArray[np.int64] | NDArray[np.float64]) -> Stats:
    """The statistics of samples given as counts per type: ``counts`` is (B, types)."""
    weights = np.asarray(counts, dtype=np.float64)
    if weights.ndim == 1:
        weights = weights[None, :]
    names = table.label_names if table.label_names is not None else _observed_names(data)
    groups = np.zeros((weights.shape[0], len(names)))
    if LABELS in table.values and names:
        onehot = np.zeros((len(table.counts), len(names)))
        onehot[np.arange(len(table.counts)), table.values[LABELS]] = 1.0
        groups = weights @ onehot
    anys: dict[str, NDArray[np.float64]] = {}
    hits: dict[str, NDArray[np.float64]] = {}
    for feature, values in table.values.items():
        kind, _, list_name = feature.partition(":")
        if kind == "any":
            anys[list_name] = weights @ values.astype(np.float64)
        elif kind == "hits":
            hits[list_name] = weights @ values.astype(np.float64)
    return _stats(data, names, weights.sum(axis=1), groups, anys, hits)


def _observed_names(data: CategoryData) -> tuple[str, ...]:
    return data.label_codes().names if data.attribute is not None else ()


#: The two priors the posterior interval is computed under (see :func:`posterior_table`).
Prior = Literal["perks", "jeffreys"]
PRIORS: tuple[Prior, ...] = ("perks", "jeffreys")


def posterior_table(
    data: CategoryData, features: tuple[str, ...], prior: Prior = "perks"
) -> tuple[TypeTable, NDArray[np.float64]]:
    """The observed types plus prior cells, and the Dirichlet parameters over them (counts + prior).

    A group-share metric from a few images is uncertain most where a group was never drawn: a bootstrap
    of such data never draws it either (an interval of parity collapses to [-1, -1]). The posterior gives
    every group of the attribute (strict mode: every declared group, drawn or not; paper mode: the
    observed ones) prior pseudo-images spread over the corners of the presence statistics:

    * ``perks``: one pseudo-image in all (a weak prior: many declared groups do not swamp a few images);
    * ``jeffreys``: half a pseudo-image per group (Jeffreys' prior for the group shares).

    For two groups the two agree. Statistics without labels give half a pseudo-image to each corner of
    their space (no term / every term of each list: Jeffreys' Beta(1/2, 1/2) for a share of images), and
    so do the corners of a metric that reads both, when that is more.
    """
    table = type_table(data, features)
    observed = _observed_names(data)
    names = observed
    if LABELS in features and data.attribute is not None and data.mode == "strict":
        names = observed + tuple(g for g in data.attribute.groups if g not in observed)
    others = [f for f in features if f != LABELS]
    corners = [
        np.array([0, 1] if f.startswith("any:") else [0, data.present[f.partition(":")[2]].shape[1]], np.int64)
        for f in others
    ]
    grids = np.meshgrid(*corners, indexing="ij") if corners else []
    combos = np.stack([g.ravel() for g in grids], axis=1) if corners else np.zeros((1, 0), np.int64)
    if LABELS in features:
        code = {name: i for i, name in enumerate(names)}
        prior_groups = list(data.attribute.groups) if data.attribute is not None and data.mode == "strict" else observed
        labels = np.repeat(np.array([code[g] for g in prior_groups], np.int64), len(combos))
        rest = np.tile(combos, (len(prior_groups), 1))
    else:
        labels = np.zeros(len(combos), np.int64)
        rest = combos
    groups = len(labels) // len(combos) if LABELS in features else 0
    total = 1.0 if prior == "perks" or not groups else 0.5 * groups
    weight = max(total, 0.5 * len(combos)) / len(labels)
    values: dict[str, NDArray[np.int64]] = {}
    for f in features:
        prior_values = labels if f == LABELS else rest[:, others.index(f)]
        values[f] = np.concatenate([table.values[f], prior_values]).astype(np.int64)
    alpha = np.concatenate([table.counts.astype(np.float64), np.full(len(labels), weight)])
    return TypeTable(values, np.concatenate([table.counts, np.zeros(len(labels), np.int64)]), names), alpha


def point_stats(data: CategoryData) -> Stats:
    """Every statistic of the data itself (one sample), counted straight from the columns."""
    names: tuple[str, ...] = ()
    groups = np.zeros((1, 0))
    if data.attribute is not None and data.n:
        codes = data.label_codes()
        names = codes.names
        groups = np.bincount(codes.codes, minlength=len(names)).astype(np.float64)[None, :]
    anys = {name: np.array([float(image_features(data, "any:" + name).sum())]) for name in data.present}
    hits = {name: np.array([float(image_features(data, "hits:" + name).sum())]) for name in data.present}
    return _stats(data, names, np.array([float(data.n)]), groups, anys, hits)


def resplit(stats: Stats, shares: Mapping[str, float]) -> Stats:
    """The same samples with each one's known labels re-split by ``shares`` (images with an unknown label,
    and every term found, as they are)."""
    assert stats.attribute is not None
    observed = stats.label_names
    names = observed + tuple(g for g in shares if g not in observed)
    known = np.array([name in stats.attribute.groups for name in observed], dtype=bool)
    total = stats.groups[:, known].sum(axis=1) if known.any() else np.zeros(stats.samples)
    groups = np.zeros((stats.samples, len(names)))
    groups[:, : len(observed)] = stats.groups
    for i, name in enumerate(names):
        if name in shares:
            groups[:, i] = total * shares[name]
    return Stats(stats.spec, stats.attribute, stats.mode, names, stats.n, groups, stats.anys, stats.hits, stats.sizes)


def _stats(
    data: CategoryData,
    names: tuple[str, ...],
    n: NDArray[np.float64],
    groups: NDArray[np.float64],
    anys: Mapping[str, NDArray[np.float64]],
    hits: Mapping[str, NDArray[np.float64]],
) -> Stats:
    sizes = {name: int(m.shape[1]) for name, m in data.present.items()}
    return Stats(data.spec, data.attribute, data.mode, names, n, groups, anys, hits, sizes)


def dirichlet_draws(alpha: NDArray[np.float64], n: int, n_draws: int, seed: int, stream: str) -> NDArray[np.float64]:
    """``n_draws`` posterior draws of the types' shares (Dirichlet(``alpha``)), scaled to ``n`` images."""
    rng = np.random.default_rng([seed, zlib.crc32(("posterior:" + stream).encode())])
    if len(alpha) == 0:
        return np.zeros((n_draws, 0))
    return rng.dirichlet(alpha, size=n_draws) * n


def multinomial_draws(counts: NDArray[np.int64], n_boot: int, seed: int, stream: str) -> NDArray[np.int64]:
    """``n_boot`` bootstrap resamples of the units behind ``counts``, as (n_boot, types) counts.

    Drawing n units with replacement from n and counting them per type is a multinomial draw with the
    types' shares as probabilities. Seeded by ``seed`` and the name of the ``stream`` (which statistics
    are resampled), so the same data gives the same replicates whatever else is computed.
    """
    total = int(counts.sum())
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    if total == 0:
        return np.zeros((n_boot, len(counts)), dtype=np.int64)
    return rng.multinomial(total, counts / total, size=n_boot)


@dataclass(frozen=True)
class PooledTypes:
    """The images of two runs of one category, collapsed into the types both runs share.

    ``data`` holds both runs' images (the baseline's first), so one label vocabulary serves both;
    ``table`` their distinct types; ``base`` / ``cand`` how many images of each run are of each type.
    For paired runs (image i of one with image i of the other), ``pairs`` are the distinct kinds of pair:
    (baseline type, candidate type, how many pairs).
    """

    data: CategoryData
    table: TypeTable
    base: NDArray[np.int64]
    cand: NDArray[np.int64]
    pairs: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]] | None


def pooled_types(base: CategoryData, cand: CategoryData, features: tuple[str, ...], paired: bool) -> PooledTypes:
    """Both runs' images in one set of types (see :class:`PooledTypes`).

    Raises:
        ValueError: ``paired`` runs of different sizes.
    """
    if paired and base.n != cand.n:
        raise ValueError(f"paired data must have equal n, got {base.n} and {cand.n}")
    both = CategoryData(
        base.name,
        base.spec,
        base.attribute,
        base.mode,
        tuple(base.labels) + tuple(cand.labels),
        {name: np.concatenate([base.present[name], cand.present[name]]) for name in base.present},
        (),
        _n=base.n + cand.n,
    )
    columns = [image_features(both, f) for f in features]
    total = base.n + cand.n
    if not columns:
        inverse = np.zeros(total, dtype=np.intp)
        table = TypeTable({}, np.array([total], dtype=np.int64))
    else:
        _, first, inverse, counts = np.unique(
            np.stack(columns, axis=1), axis=0, return_index=True, return_inverse=True, return_counts=True
        )
        inverse = inverse.reshape(-1)
        table = TypeTable({f: c[first] for f, c in zip(features, columns, strict=True)}, counts.astype(np.int64))
    k = len(table.counts)
    base_counts = np.bincount(inverse[: base.n], minlength=k).astype(np.int64)
    cand_counts = np.bincount(inverse[base.n :], minlength=k).astype(np.int64)
    pairs = None
    if paired:
        kinds, m = np.unique(np.stack([inverse[: base.n], inverse[base.n :]], axis=1), axis=0, return_counts=True)
        pairs = (kinds[:, 0].astype(np.intp), kinds[:, 1].astype(np.intp), m.astype(np.int64))
    return PooledTypes(both, table, base_counts, cand_counts, pairs)
