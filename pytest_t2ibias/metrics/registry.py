"""The metric registry: everything the package knows about a metric, in one place.

Each metric is registered once, by id, with what it reads, which way is better, and whether it is the
mean of a per-image yes/no outcome. The engine, the intervals, the paired comparisons, the choice of the
images shown on a failure and the benchmarks ask :func:`metric_def` instead of keeping lists.

Two kinds of metric:

* **count metrics** (``@count_metric``): a vectorised function of the category's sufficient statistics
  (:class:`~pytest_t2ibias.metrics.counts.Stats`): label counts, any-term counts, terms found. They are
  computed for every bootstrap replicate at once.
* **data metrics** (``@metric``): a function of the whole :class:`CategoryData` (captions, embeddings,
  or anything else), computed replicate by replicate. Custom metrics are data metrics unless they say
  what counts they read.

A metric raises :class:`MetricUnavailable` with a reason when it cannot be computed (no images, every
label unknown); the engine turns that into ``null`` plus the reason, never a crash or a warning.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pytest_t2ibias.metrics.counts import LABELS, Stats, TypeTable, point_stats, stats_of
from pytest_t2ibias.metrics.data import CategoryData, Distribution, MetricUnavailable
from pytest_t2ibias.suites.schema import VIEW

__all__ = [
    "METRICS",
    "CategoryData",
    "Distribution",
    "MetricDef",
    "MetricUnavailable",
    "Outcome",
    "added_by",
    "count_metric",
    "distribution_metric",
    "headline_metrics",
    "metric",
    "metric_def",
    "unknown_metric",
    "worsening_by",
]
from pytest_t2ibias.types import MetricValue, Mode

if TYPE_CHECKING:
    from pytest_t2ibias.suites.schema import Category

#: Which way is better: ``lower``, ``higher``, ``even`` (a change either way is a change), or
#: ``closer_to_zero`` (a signed value: further from zero is worse).
Better = Literal["lower", "higher", "even", "closer_to_zero"]
#: What a count metric can read besides the label counts: ``any:<list>`` (images with any term of the
#: list) and ``hits:<list>`` (terms of the list found, summed over images).
CountsFn = Callable[[Stats], "NDArray[np.float64] | dict[str, float]"]
_F = TypeVar("_F", bound=CountsFn)
_V = TypeVar("_V", float, NDArray[np.float64])
#: What adds a metric to every category besides its suite ``metrics`` line: ``strict`` (strict mode, to
#: a category with an attribute) or ``embeddings`` (records that carry image embeddings or CLIPScores).
AddedBy = Literal["strict", "embeddings"]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The per-image yes/no whose mean is the metric.

    ``kind``: ``unknown`` (the attribute label is not a declared group), ``label`` (the label is
    ``target``), ``any`` (some term of list ``target`` was found). ``over``: the images the mean is taken
    over: ``all``, or ``known`` (strict-mode group shares leave unknown labels out of the denominator).
    """

    kind: Literal["unknown", "label", "any"]
    target: str | None = None
    over: Literal["all", "known"] = "all"


@dataclass(frozen=True, kw_only=True)
class MetricDef:
    """One registered metric."""

    id: str
    description: str
    requires: tuple[str, ...] = ()
    better: Better | tuple[Better, Better] = "lower"  # one for both modes, or (paper, strict)
    #: count metric: the statistics it reads and the vectorised function over them
    reads: tuple[str, ...] = ()
    counts: CountsFn | None = None
    #: the metric as a function of the whole category data (for a count metric: of its point statistics)
    fn: Callable[[CategoryData], MetricValue]
    #: data metric, optional: the metric on B bootstrap resamples at once, given as (B, n) image indices
    #: (NaN where a resample has no value); without it the engine recomputes ``fn`` resample by resample
    resampled: Callable[[CategoryData, NDArray[np.intp]], NDArray[np.float64]] | None = None
    outcome: Outcome | None = None
    distribution: bool = False  # a group -> share mapping, not a scalar (no interval, no comparison)
    #: the images that push the metric the wrong way: ``most:<list>`` / ``fewest:<list>`` (term counts),
    #: ``unknown`` (no label), ``top_group`` (the most frequent group), ``clip_score`` (least like the prompt)
    drivers: str = "top_group"
    #: the values the metric can take (intervals built by reflection are clipped to it)
    span: tuple[float, float] = (-math.inf, math.inf)
    #: what adds the metric to a category whose suite does not list it (None: only the suite adds it)
    added_by: AddedBy | None = None
    #: whether two runs' images can be compared pair by pair from what a baseline stores (per-image labels
    #: and presence); a metric of captions or embeddings is compared on the two runs' intervals instead
    pairable: bool = True
    #: rank among the headline metrics (the summary's columns when the run gated none); None: not one
    headline: int | None = None
    #: a metric that is a sum of absolute values of signed parts (folded at its target) in the modes
    #: ``folded_in``: the parts, (samples, parts), as a function of the statistics. Every "closer to
    #: zero" metric is folded too, its one part its own signed value.
    signed_parts: CountsFn | None = None
    folded_in: tuple[Mode, ...] = ()
    #: the attribute a ``<metric>@<attribute>`` id measures (its definition is the metric's, computed on
    #: the category's view of that attribute: :meth:`CategoryData.view`); None: the attribute under test
    view: str | None = None

    def direction(self, mode: Mode) -> Better:
        """Which way is worse in ``mode``."""
        if isinstance(self.better, tuple):
            return self.better[0] if mode == "paper" else self.better[1]
        return self.better

    def worsening(self, mode: Mode, value: _V, baseline: _V | float) -> _V:
        """How much worse ``value`` is than ``baseline`` in ``mode`` (negative: better); elementwise."""
        return worsening_by(self.direction(mode), value, baseline)

    def folded(self, mode: Mode) -> bool:
        """Is the metric a sum of absolute values of signed parts, folded at its target, in ``mode``?"""
        return self.direction(mode) == "closer_to_zero" or mode in self.folded_in

    def parts(self, stats: Stats) -> NDArray[np.float64] | None:
        """The metric as its signed parts, (samples, parts), where it is folded (:meth:`folded`); None
        for a metric that is not, or where the parts have no value. NaN marks a sample without one."""
        if not self.folded(stats.mode):
            return None
        try:
            if self.signed_parts is not None and stats.mode in self.folded_in:
                return np.asarray(self.signed_parts(stats), dtype=np.float64)
            return self.statistic(stats)[:, None]
        except MetricUnavailable:
            return None

    def features(self, spec: Category) -> tuple[str, ...]:
        """What the metric reads in this category (:func:`reads_of`)."""
        return reads_of(self, spec)

    def over_labels(self, spec: Category) -> bool:
        """Whether the metric is computed from the attribute's labels (a count metric that reads them)."""
        return self.counts is not None and LABELS in self.features(spec)

    def statistic_on(self, data: CategoryData, table: TypeTable, weights: NDArray[np.float64]) -> NDArray[np.float64]:
        """The metric on samples given as weights over ``table``'s image types (one row a sample)."""
        return self.statistic(stats_of(data, table, weights))

    def parts_on(
        self, data: CategoryData, table: TypeTable, weights: NDArray[np.float64]
    ) -> NDArray[np.float64] | None:
        """:meth:`parts` of samples given as weights over ``table``'s image types."""
        return self.parts(stats_of(data, table, weights))

    def statistic(self, stats: Stats) -> NDArray[np.float64]:
        """A scalar count metric on every sample of ``stats`` (NaN where a sample has no value)."""
        assert self.counts is not None
        try:
            values = self.counts(stats)
        except MetricUnavailable:
            return np.full(stats.samples, np.nan)
        assert not isinstance(values, dict)
        return np.asarray(values, dtype=np.float64)

    @property
    def is_count(self) -> bool:
        return self.counts is not None


def worsening_by(better: Better, value: _V, baseline: _V | float) -> _V:
    """How much worse ``value`` is than ``baseline`` for a metric whose better way is ``better``."""
    if better == "lower":
        return value - baseline
    if better == "higher":
        return baseline - value
    if better == "closer_to_zero":
        return abs(value) - abs(baseline)  # type: ignore[operator,no-any-return]  # abs of either type
    return abs(value - baseline)


METRICS: dict[str, MetricDef] = {}


def added_by(what: AddedBy) -> tuple[str, ...]:
    """The metrics that ``what`` adds to a category (registration order)."""
    return tuple(d.id for d in METRICS.values() if d.added_by == what)


def headline_metrics() -> tuple[str, ...]:
    """The headline metrics, by rank."""
    ranked = sorted((d.headline, d.id) for d in METRICS.values() if d.headline is not None)
    return tuple(metric_id for _, metric_id in ranked)


def distribution_metric() -> str | None:
    """The metric that reports the attribute's group shares (a group -> share mapping)."""
    return next((d.id for d in METRICS.values() if d.distribution), None)


def unknown_metric() -> str | None:
    """The metric that is the share of images without a label of the attribute (over every image)."""
    return next((d.id for d in METRICS.values() if d.outcome is not None and d.outcome.kind == "unknown"), None)


def _register(definition: MetricDef) -> None:
    if definition.id in METRICS:
        raise ValueError(f"metric {definition.id!r} is registered twice")
    METRICS[definition.id] = definition


def _first_doc_line(fn: Callable[..., object]) -> str:
    doc = (fn.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def metric(
    metric_id: str,
    *,
    requires: Sequence[str] = (),
    better: Better,
    drivers: str = "top_group",
    resampled: Callable[[CategoryData, NDArray[np.intp]], NDArray[np.float64]] | None = None,
    added_by: AddedBy | None = None,
    headline: int | None = None,
) -> Callable[[Callable[[CategoryData], MetricValue]], Callable[[CategoryData], MetricValue]]:
    """Register ``fn`` as data metric ``metric_id``; ``requires`` names what the category must declare:
    ``attribute``, ``parity``, or a term list (``explicit``, ``cas_stereotype``, ...). ``resampled``, when
    given, computes the metric on many bootstrap resamples at once. A data metric is not pairable (a
    baseline stores no captions or embeddings): it is compared on the two runs' intervals."""

    def register(fn: Callable[[CategoryData], MetricValue]) -> Callable[[CategoryData], MetricValue]:
        _register(
            MetricDef(
                id=metric_id,
                description=_first_doc_line(fn),
                requires=tuple(requires),
                better=better,
                fn=fn,
                drivers=drivers,
                resampled=resampled,
                added_by=added_by,
                pairable=False,
                headline=headline,
            )
        )
        return fn

    return register


def on_data(counts: CountsFn) -> Callable[[CategoryData], MetricValue]:
    """A count metric as a function of category data: evaluated on the data's own statistics."""

    def fn(data: CategoryData) -> MetricValue:
        if data.n == 0:
            raise MetricUnavailable("no images in category")
        return point_value(counts(point_stats(data)))

    return fn


def point_value(value: NDArray[np.float64] | dict[str, float]) -> MetricValue:
    """The value of sample 0 (a count metric's result on one sample)."""
    return value if isinstance(value, dict) else float(value[0])


def count_metric(
    metric_id: str,
    *,
    reads: Sequence[str],
    requires: Sequence[str] = (),
    better: Better | tuple[Better, Better],
    outcome: Outcome | None = None,
    distribution: bool = False,
    drivers: str = "top_group",
    span: tuple[float, float] = (-math.inf, math.inf),
    added_by: AddedBy | None = None,
    headline: int | None = None,
    signed_parts: CountsFn | None = None,
    folded_in: Sequence[Mode] = (),
) -> Callable[[_F], _F]:
    """Register ``fn`` (a vectorised function of :class:`Stats`) as count metric ``metric_id``.

    ``reads``: ``labels``, ``any:<list>``, ``hits:<list>``; a list the category does not declare is left
    out. ``fn`` returns one value per sample (NaN where unavailable) and raises
    :class:`MetricUnavailable` when no sample has a value. The other keywords are the fields of
    :class:`MetricDef` of the same names.
    """

    def register(fn: _F) -> _F:
        _register(
            MetricDef(
                id=metric_id,
                description=_first_doc_line(fn),
                requires=tuple(requires),
                better=better,
                reads=tuple(reads),
                counts=fn,
                fn=on_data(fn),
                outcome=outcome,
                distribution=distribution,
                drivers=drivers,
                span=span,
                added_by=added_by,
                headline=headline,
                signed_parts=signed_parts,
                folded_in=tuple(folded_in),
            )
        )
        return fn

    return register


def metric_def(metric_id: str, spec: Category) -> MetricDef | None:
    """The definition of ``metric_id`` in a category: registered, a group share, a context ratio, or one of
    those measured on another attribute (``fd@ethnicity``: :attr:`MetricDef.view`)."""
    if metric_id in METRICS:
        return METRICS[metric_id]
    if VIEW in metric_id:
        return _view_def(metric_id, spec)
    if metric_id in spec.shares:
        return _share_def(metric_id, tuple(spec.share_groups(metric_id)))
    if metric_id.endswith("_ratio") and metric_id[: -len("_ratio")] in spec.context:
        return _ratio_def(metric_id[: -len("_ratio")])
    return None


def on_view(data: CategoryData, metric_id: str) -> tuple[CategoryData, str]:
    """Where a metric is computed: ``fd@ethnicity`` is ``fd`` on the category's view of ethnicity; any
    other metric is itself on ``data``."""
    definition = metric_def(metric_id, data.spec)
    if definition is None or definition.view is None:
        return data, metric_id
    return data.view(definition.view), metric_id.partition(VIEW)[0]


def direction_of(metric_id: str, mode: Mode, spec: Category | None = None) -> Better:
    """Which way is worse for a metric in ``mode`` (without ``spec``: a ``*_ratio`` is a context ratio and
    any other unregistered id a group share)."""
    definition = metric_def(metric_id, spec) if spec is not None else METRICS.get(metric_id)
    if definition is None and metric_id.endswith("_ratio"):
        definition = _ratio_def(metric_id[: -len("_ratio")])
    return definition.direction(mode) if definition is not None else "even"


def reads_of(definition: MetricDef, spec: Category) -> tuple[str, ...]:
    """What a count metric reads in this category (lists the category does not declare left out)."""
    lists = set(spec.list_names())
    return tuple(r for r in definition.reads if r == LABELS or r.partition(":")[2] in lists)


# -- vectorised helpers shared by the count metrics ----------------------------------------------------


def unavailable(mask: NDArray[np.bool_], reason: Callable[[], str]) -> NDArray[np.bool_]:
    """``mask`` (per sample: unavailable), after raising when no sample is available at all."""
    if mask.all():
        raise MetricUnavailable(reason())
    return mask


def where_available(values: NDArray[np.float64], mask: ArrayLike) -> NDArray[np.float64]:
    """``values`` with NaN where ``mask`` (unavailable) is true."""
    return np.where(mask, np.nan, values)


@dataclass(frozen=True)
class Shares:
    """The distribution of B samples: ``p[b, j]`` is the share of group ``groups[j]`` in sample b.

    Strict mode: the declared groups (unknown labels left out of the denominator); paper mode: every
    observed label (unknown counted as a group); a group absent from a sample has share 0 there.
    ``k`` is the number of groups each sample's distribution has (paper: observed; strict: declared);
    ``total`` the images the shares are taken over (paper: every image; strict: the labelled ones).
    """

    groups: tuple[str, ...]
    p: NDArray[np.float64]
    k: NDArray[np.float64]
    observed: NDArray[np.bool_]
    total: NDArray[np.float64]


def shares(stats: Stats) -> Shares:
    """The group shares of every sample; raises (or NaN-masks) samples without a distribution."""
    if stats.attribute is None:
        raise MetricUnavailable("category declares no attribute")
    n = stats.n
    unavailable(n == 0, lambda: "no images in category")
    names = stats.label_names
    if stats.mode == "paper":
        known = [name not in ("unknown", stats.attribute.unmatched) for name in names]
        groups, counts = names, stats.groups
        denominator = n
    else:
        known = [name in stats.attribute.groups for name in names]
        groups = tuple(stats.attribute.groups)
        index = {name: j for j, name in enumerate(names)}
        counts = np.zeros((stats.samples, len(groups)))
        for j, group in enumerate(groups):
            if group in index:
                counts[:, j] = stats.groups[:, index[group]]
        denominator = counts.sum(axis=1)
    known_total = stats.groups[:, np.array(known, dtype=bool)].sum(axis=1) if names else np.zeros(stats.samples)
    missing = unavailable((n == 0) | (known_total == 0), lambda: f"all {int(n[0])} labels unknown")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / denominator[:, None]
    p[missing] = np.nan
    observed = counts > 0
    k = observed.sum(axis=1).astype(np.float64) if stats.mode == "paper" else np.full(stats.samples, len(groups), float)
    return Shares(groups, p, k, observed, np.asarray(denominator, dtype=np.float64))


def share_of(s: Shares, members: Sequence[str]) -> NDArray[np.float64]:
    """The summed share of ``members`` per sample (0 for a group the distribution does not have)."""
    index = {g: j for j, g in enumerate(s.groups)}
    columns = [index[g] for g in members if g in index]
    total = s.p[:, columns].sum(axis=1)
    return np.where(np.isnan(s.p).any(axis=1), np.nan, total)


#: The definitions of ``<metric>@<attribute>`` ids, by id and category (the category kept alive with it,
#: so an id is never reused while cached).
_VIEW_DEFS: dict[tuple[str, int], tuple[Category, MetricDef | None]] = {}


def _view_def(metric_id: str, spec: Category) -> MetricDef | None:
    """``<metric>@<attribute>``: the metric's definition on the category's view of the attribute."""
    cached = _VIEW_DEFS.get((metric_id, id(spec)))
    if cached is not None and cached[0] is spec:
        return cached[1]
    base, _, attribute = metric_id.partition(VIEW)
    definition = None
    if attribute in spec.measured_attributes() and VIEW not in base:
        on_view = metric_def(base, spec.view(attribute))
        if on_view is not None and (on_view.requires[:1] == ("attribute",) or on_view.outcome is not None):
            definition = replace(on_view, id=metric_id, view=attribute, added_by=None, headline=None)
    if len(_VIEW_DEFS) >= 1024:
        _VIEW_DEFS.clear()
    _VIEW_DEFS[(metric_id, id(spec))] = (spec, definition)
    return definition


@functools.lru_cache(maxsize=256)
def _share_def(metric_id: str, groups: tuple[str, ...]) -> MetricDef:
    def share(stats: Stats) -> NDArray[np.float64]:
        return share_of(shares(stats), list(groups))

    what = f"group {groups[0]!r}" if len(groups) == 1 else f"groups {', '.join(map(repr, groups))}"
    return MetricDef(
        id=metric_id,
        description=f"Share of {what} of the attribute under test.",
        requires=("attribute",),
        better="even",
        reads=(LABELS,),
        counts=share,
        fn=on_data(share),
        # one group: the mean of "the label is that group" over the labelled images (a Wilson interval and
        # McNemar's test); several: a count metric (posterior interval, permutation test)
        outcome=Outcome(kind="label", target=groups[0], over="known") if len(groups) == 1 else None,
        span=(0.0, 1.0),
    )


@functools.lru_cache(maxsize=256)
def _ratio_def(list_name: str) -> MetricDef:
    def ratio(stats: Stats) -> NDArray[np.float64]:
        return any_rate(stats, list_name)

    return MetricDef(
        id=f"{list_name}_ratio",
        description=f"Share of images with any term of the context list {list_name!r}.",
        better="higher",
        reads=(f"any:{list_name}",),
        counts=ratio,
        fn=on_data(ratio),
        outcome=Outcome(kind="any", target=list_name),
        drivers=f"fewest:{list_name}",
        span=(0.0, 1.0),
    )


def any_rate(stats: Stats, list_name: str) -> NDArray[np.float64]:
    """Share of images with any term of the list, per sample."""
    n = stats.n
    unavailable(n == 0, lambda: "no images in category")
    with np.errstate(invalid="ignore", divide="ignore"):
        return where_available(stats.anys[list_name] / n, n == 0)


def term_coverage(stats: Stats, list_name: str) -> NDArray[np.float64]:
    """Mean over images of the fraction of the list's terms found, per sample."""
    n = stats.n
    unavailable(n == 0, lambda: "no images in category")
    with np.errstate(invalid="ignore", divide="ignore"):
        return where_available(stats.hits[list_name] / (n * stats.sizes[list_name]), n == 0)
