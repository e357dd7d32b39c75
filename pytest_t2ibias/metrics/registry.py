"""Metric registry: each metric is one function of a :class:`CategoryData`, registered by id.

A metric raises :class:`MetricUnavailable` with a reason when it cannot be computed (no images, every
label unknown); the engine turns that into ``null`` plus the reason, never a crash or a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.metrics.distribution import proportions
from pytest_t2ibias.types import MetricValue, Mode

if TYPE_CHECKING:
    from pytest_t2ibias.suites.schema import Attribute, Category

Better = Literal["lower", "higher", "even"]


class MetricUnavailable(Exception):
    """A metric that cannot be computed on this data; ``str(err)`` is the reason."""


@dataclass(frozen=True)
class MetricDef:
    id: str
    fn: Callable[[CategoryData], MetricValue]
    requires: tuple[str, ...]
    better: Better
    description: str


METRICS: dict[str, MetricDef] = {}


def metric(
    metric_id: str, *, requires: Sequence[str] = (), better: Better
) -> Callable[[Callable[[CategoryData], MetricValue]], Callable[[CategoryData], MetricValue]]:
    """Register ``fn`` as metric ``metric_id``; ``requires`` names what the category must declare:
    ``attribute``, ``parity``, or a term list (``explicit``, ``cas_stereotype``, ...)."""

    def register(fn: Callable[[CategoryData], MetricValue]) -> Callable[[CategoryData], MetricValue]:
        if metric_id in METRICS:
            raise ValueError(f"metric {metric_id!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        METRICS[metric_id] = MetricDef(metric_id, fn, tuple(requires), better, doc[0] if doc else "")
        return fn

    return register


@dataclass(frozen=True)
class Distribution:
    """Shares of the attribute's groups, plus how many labels were unknown."""

    groups: list[str]
    p: NDArray[np.float64]
    unknown_rate: float

    def as_dict(self) -> dict[str, float]:
        return {g: float(x) for g, x in zip(self.groups, self.p, strict=True)}


@dataclass(frozen=True)
class CategoryData:
    """Everything a metric sees of one category: labels, presence matrices, captions, the spec."""

    name: str
    spec: Category
    attribute: Attribute | None
    mode: Mode
    labels: tuple[str, ...]
    present: Mapping[str, NDArray[np.bool_]]
    texts: tuple[str, ...]
    embeddings: NDArray[np.float64] | None = None
    clip_scores: NDArray[np.float64] | None = None
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n(self) -> int:
        return len(self.labels) if self.attribute is not None else len(self.texts)

    def matrix(self, list_name: str) -> NDArray[np.bool_]:
        if self.n == 0:
            raise MetricUnavailable("no images in category")
        return self.present[list_name]

    def resample(self, index: NDArray[np.intp]) -> CategoryData:
        """The same category with images ``index`` (with repeats): one bootstrap replicate."""
        return CategoryData(
            self.name,
            self.spec,
            self.attribute,
            self.mode,
            tuple(self.labels[i] for i in index) if self.labels else (),
            {name: matrix[index] for name, matrix in self.present.items()},
            tuple(self.texts[i] for i in index) if self.texts else (),
            None if self.embeddings is None else self.embeddings[index],
            None if self.clip_scores is None else self.clip_scores[index],
        )

    def is_known(self, label: str) -> bool:
        """Paper mode: anything but the unmatched label. Strict mode: a declared group."""
        assert self.attribute is not None
        if self.mode == "paper":
            return label not in ("unknown", self.attribute.unmatched)
        return label in self.attribute.groups

    def distribution(self) -> Distribution:
        """Paper: observed labels, unknown counted as a group. Strict: declared groups, unknown apart."""
        cached = self._cache.get("distribution")
        if isinstance(cached, Distribution):
            return cached
        if self.attribute is None:
            raise MetricUnavailable("category declares no attribute")
        if self.n == 0:
            raise MetricUnavailable("no images in category")
        n_unknown = sum(not self.is_known(label) for label in self.labels)
        if n_unknown == self.n:
            raise MetricUnavailable(f"all {self.n} labels unknown")
        if self.mode == "paper":
            groups, p = proportions(self.labels)
        else:
            groups, p = proportions(self.labels, groups=list(self.attribute.groups))
        dist = Distribution(groups, p, n_unknown / self.n)
        self._cache["distribution"] = dist
        return dist

    def computed(self, metric_id: str) -> MetricValue:
        """Another metric of the same category (for composites), computed once."""
        key = "metric:" + metric_id
        if key not in self._cache:
            self._cache[key] = METRICS[metric_id].fn(self)
        return self._cache[key]  # type: ignore[return-value]
