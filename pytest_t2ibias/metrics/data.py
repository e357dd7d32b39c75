"""One category's per-image data as columns: what the engine reads.

Built from :class:`~pytest_t2ibias.records.ImageRecord` objects (what annotators produce) by
:func:`~pytest_t2ibias.metrics.engine.category_data`, or straight from arrays by
:meth:`CategoryData.from_columns`, so a million images need not be a million pydantic objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pytest_t2ibias.errors import MetricUnavailable as MetricUnavailable
from pytest_t2ibias.metrics.distribution import proportions
from pytest_t2ibias.suites.schema import joint_attribute, joint_labels
from pytest_t2ibias.types import Mode

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.scorer_card import AttributeCard, TermCard
    from pytest_t2ibias.suites.schema import Attribute, Category, Suite


@dataclass(frozen=True)
class Distribution:
    """Shares of the attribute's groups, plus how many labels were unknown."""

    groups: list[str]
    p: NDArray[np.float64]
    unknown_rate: float

    def as_dict(self) -> dict[str, float]:
        return {g: float(x) for g, x in zip(self.groups, self.p, strict=True)}


@dataclass(frozen=True)
class LabelCodes:
    """The labels of a category factorised: ``names[codes[i]]`` is image i's label.

    ``names`` are in order of first appearance (paper mode breaks frequency ties by it).
    """

    names: tuple[str, ...]
    codes: NDArray[np.intp]


@dataclass(frozen=True)
class CategoryData:
    """Everything a metric sees of one category: labels, presence matrices, captions, the spec.

    ``labels[i]`` is image i's label of the attribute under test (empty without an attribute);
    ``present[list][i, j]`` whether term j of the list was found for image i; ``texts`` the captions (or
    empty); ``embeddings`` / ``clip_scores`` when the scorer made them; ``seeds`` pair images across runs.
    """

    name: str
    spec: Category
    attribute: Attribute | None
    mode: Mode
    labels: Sequence[str]
    present: Mapping[str, NDArray[np.bool_]]
    texts: Sequence[str]
    embeddings: NDArray[np.float64] | None = None
    clip_scores: NDArray[np.float64] | None = None
    seeds: NDArray[np.int64] | None = None
    #: the scorer card's entry for the attribute, when the metrics are corrected with it (bounds are then
    #: tested on the corrected scale: :func:`~pytest_t2ibias.metrics.intervals.bound_p_value`)
    scorer_card: AttributeCard | None = field(default=None, compare=False, repr=False, kw_only=True)
    #: the scorer card's per-term judgements, when presence metrics are corrected with them
    term_cards: Mapping[str, TermCard] | None = field(default=None, compare=False, repr=False, kw_only=True)
    #: every other annotated attribute (``also_annotate``): its definition and each image's label of it
    annotations: Mapping[str, tuple[Attribute, Sequence[str]]] = field(
        default_factory=dict, compare=False, repr=False, kw_only=True
    )
    #: the scorer card's entries for the other attributes, when their metrics are corrected with them
    view_cards: Mapping[str, AttributeCard] = field(default_factory=dict, compare=False, repr=False, kw_only=True)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _n: int | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_columns(
        cls,
        suite: Suite,
        category: str,
        mode: Mode,
        *,
        n: int | None = None,
        labels: ArrayLike | None = None,
        label_names: Sequence[str] | None = None,
        present: Mapping[str, ArrayLike] | None = None,
        texts: Sequence[str] | None = None,
        embeddings: ArrayLike | None = None,
        clip_scores: ArrayLike | None = None,
        seeds: ArrayLike | None = None,
        annotations: Mapping[str, Sequence[str]] | None = None,
    ) -> CategoryData:
        """A category's data from arrays, one entry (row) per image.

        Args:
            labels: the label of the attribute under test per image: strings, or integer codes into
                ``label_names`` (the fast path for large n).
            present: term list name -> (images, terms) booleans, columns in the suite's term order; a
                list the category declares but ``present`` lacks counts as nothing found.
            n: the number of images, needed only when neither labels nor presence give it.
            annotations: attribute -> each image's label of it, for the category's other annotated
                attributes (``also_annotate``; the metrics measured on them or on ``intersect``).

        Raises:
            ValueError: a column's length or shape does not match the others, or a code is out of range.
        """
        spec = suite.categories[category]
        attribute = suite.attribute_of(category)
        given = present or {}
        sizes = {name: len(spec.term_list(name)) for name in spec.list_names()}
        unknown_lists = sorted(set(given) - set(sizes))
        if unknown_lists:
            raise ValueError(f"`present` names lists category {category!r} does not have: {unknown_lists}")
        lengths = {}
        if labels is not None:
            lengths["labels"] = len(labels)  # type: ignore[arg-type]
        for name, matrix in given.items():
            lengths[f"present.{name}"] = int(np.shape(matrix)[0])
        for name, column in (("texts", texts), ("embeddings", embeddings), ("clip_scores", clip_scores)):
            if column is not None:
                lengths[name] = len(column)  # type: ignore[arg-type]
        if seeds is not None:
            lengths["seeds"] = len(seeds)  # type: ignore[arg-type]
        others = dict(annotations or {})
        stray = sorted(set(others) - set(spec.also_annotate))
        if stray:
            raise ValueError(f"`annotations` names attributes category {category!r} does not annotate: {stray}")
        for name, column in others.items():
            lengths[f"annotations.{name}"] = len(column)
        if n is not None:
            lengths["n"] = n
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of category {category!r} differ in length: {lengths}")
        size = next(iter(lengths.values()), 0)
        if attribute is not None and labels is None and size:
            raise ValueError(f"category {category!r} has an attribute: `labels` are required")
        matrices: dict[str, NDArray[np.bool_]] = {}
        for name, terms in sizes.items():
            matrix = np.asarray(given[name], dtype=bool) if name in given else np.zeros((size, terms), dtype=bool)
            if matrix.shape != (size, terms):
                raise ValueError(f"`present.{name}` must have shape ({size}, {terms}), got {matrix.shape}")
            matrices[name] = matrix
        cache: dict[str, Any] = {}
        label_seq: Sequence[str] = ()
        if attribute is not None and labels is not None:
            if label_names is not None:
                codes = np.asarray(labels, dtype=np.intp)
                if codes.size and (codes.min() < 0 or codes.max() >= len(label_names)):
                    raise ValueError(
                        f"`labels` codes must be in [0, {len(label_names)}), got {codes.min()}..{codes.max()}"
                    )
                cache["codes"] = _refactorise(codes, tuple(label_names))
                label_seq = _LazyLabels(cache["codes"])
            else:
                label_seq = tuple(str(x) for x in np.asarray(labels, dtype=object).tolist())
        return cls(
            category,
            spec,
            attribute,
            mode,
            label_seq,
            matrices,
            tuple(texts) if texts is not None else (),
            None if embeddings is None else np.asarray(embeddings, dtype=np.float64),
            None if clip_scores is None else np.asarray(clip_scores, dtype=np.float64),
            None if seeds is None else np.asarray(seeds, dtype=np.int64),
            cache,
            size,
            annotations={name: (suite.attributes[name], tuple(map(str, col))) for name, col in others.items()},
        )

    @property
    def n(self) -> int:
        if self._n is not None:
            return self._n
        return len(self.labels) if self.attribute is not None else len(self.texts)

    def label_codes(self) -> LabelCodes:
        """The labels factorised (cached): the engine counts codes, not strings."""
        cached = self._cache.get("codes")
        if isinstance(cached, LabelCodes):
            return cached
        index: dict[str, int] = {}
        codes = np.fromiter(
            (index.setdefault(label, len(index)) for label in self.labels), dtype=np.intp, count=len(self.labels)
        )
        result = LabelCodes(tuple(index), codes)
        self._cache["codes"] = result
        return result

    def view(self, attribute: str) -> CategoryData:
        """The same images measuring ``attribute`` (another annotated one, or the joint one of
        ``intersect``) as the attribute under test: its labels, the category's view
        (:meth:`~pytest_t2ibias.suites.schema.Category.view`), the card's entry for it. Cached."""
        if attribute == self.spec.attribute:
            return self
        key = "view:" + attribute + (":card" if attribute in self.view_cards else "")
        cached = self._cache.get(key)
        if isinstance(cached, CategoryData):
            return cached
        parts = self.spec.intersect if attribute == self.spec.joint() and self.spec.intersect else [attribute]
        known = dict(self.annotations)
        if self.spec.attribute is not None and self.attribute is not None:
            known[self.spec.attribute] = (self.attribute, self.labels)
        missing = [part for part in parts if part not in known]
        if missing:
            raise MetricUnavailable(f"the images carry no {missing[0]!r} labels")
        if len(parts) == 1:
            definition, labels = known[attribute]
        else:
            definition = joint_attribute([(part, known[part][0]) for part in parts])
            labels = joint_labels([(known[part][0], tuple(known[part][1])) for part in parts])
        view = CategoryData(
            self.name,
            self.spec.view(attribute),
            definition,
            self.mode,
            tuple(labels),
            self.present,
            self.texts,
            self.embeddings,
            self.clip_scores,
            self.seeds,
            scorer_card=self.view_cards.get(attribute),
            term_cards=self.term_cards,
            _n=self._n,
        )
        self._cache[key] = view
        return view

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
            tuple(self.labels[i] for i in index) if len(self.labels) else (),
            {name: matrix[index] for name, matrix in self.present.items()},
            tuple(self.texts[i] for i in index) if self.texts else (),
            None if self.embeddings is None else self.embeddings[index],
            None if self.clip_scores is None else self.clip_scores[index],
            None if self.seeds is None else self.seeds[index],
            {},
            len(index) if self._n is not None else None,
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


def _refactorise(codes: NDArray[np.intp], names: tuple[str, ...]) -> LabelCodes:
    """Codes into ``names`` renumbered to first-appearance order (unused names dropped)."""
    if codes.size == 0:
        return LabelCodes((), codes)
    used, first = np.unique(codes, return_index=True)
    order = used[np.argsort(first, kind="stable")]
    remap = np.full(len(names), -1, dtype=np.intp)
    remap[order] = np.arange(len(order))
    return LabelCodes(tuple(names[i] for i in order), remap[codes])


class _LazyLabels(Sequence[str]):
    """Labels given as codes: strings made only when a metric asks for one."""

    def __init__(self, codes: LabelCodes) -> None:
        self._codes = codes

    def __len__(self) -> int:
        return len(self._codes.codes)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self._codes.names[c] for c in self._codes.codes[i])
        return self._codes.names[self._codes.codes[i]]

    def __iter__(self) -> Any:
        names = self._codes.names
        return (names[c] for c in self._codes.codes.tolist())
