"""A scorer given as a Python object (a fixture's return value, a ``python:`` spec) as an ImageAnnotator.

Accepted: an :class:`~pytest_t2ibias.annotate.base.ImageAnnotator` (kept as it is, a
:class:`~pytest_t2ibias.annotate.precomputed.PrecomputedLabels` included), a mapping of precomputed labels
(image id -> ``{"labels": ..., "present": ...}``, the JSON labels format), or a callable
``fn(images, category) -> labels``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator, check_annotate_inputs, record_for
from pytest_t2ibias.errors import SettingsError
from pytest_t2ibias.memo import memo_path as memo_path_of
from pytest_t2ibias.memo import read_memo, settle

if TYPE_CHECKING:
    from PIL import Image

    from pytest_t2ibias.records import ImageRecord
    from pytest_t2ibias.suites.schema import Suite

LabelFn = Callable[[Sequence["Image.Image"], str], Sequence[Any]]


def as_annotator(obj: object, suite: Suite, *, name: str | None = None, version: str | None = None) -> ImageAnnotator:
    """``obj`` as an annotator of ``suite`` (see the module docstring).

    Raises:
        SettingsError: ``obj`` is none of the accepted kinds.
        LabelsFileError: a mapping of labels that does not match the suite.
    """
    if isinstance(obj, ImageAnnotator):
        return obj
    if isinstance(obj, Mapping):
        from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

        return PrecomputedLabels.from_mapping(obj, suite, name=name or "fixture")
    if callable(obj):
        return CallableAnnotator(obj, suite, name=name, version=version)
    raise SettingsError(
        "t2ibias_scorer: a scorer must be an ImageAnnotator, a mapping of precomputed labels or a callable "
        f"fn(images, category) -> labels, got {type(obj).__name__}"
    )


class CallableAnnotator:
    """Labels from ``fn(images, category)``: one label per image, either the group of the category's
    attribute (``"female"``, or ``"unknown"``) or a dict ``{attribute: group}``; a dict with ``labels`` and
    ``present`` keys gives term lists too. Term lists not given are recorded as "none present".

    Example:
        >>> from PIL import Image
        >>> from pytest_t2ibias.suites import load_suite
        >>> scorer = CallableAnnotator(lambda images, category: ["female"] * len(images),
        ...                            load_suite("t2i-biasbench"), name="always-female", version="1")
        >>> item = AnnotationInput("d0", Image.new("RGB", (8, 8)), "a doctor")
        >>> scorer.scorer_id, scorer.annotate([item], "doctor")[0].labels
        ('callable:always-female@1', {'gender': 'female'})
    """

    def __init__(self, fn: LabelFn, suite: Suite, *, name: str | None = None, version: str | None = None) -> None:
        from pytest_t2ibias.generate.objects import callable_identity

        self.fn = fn
        self.suite = suite
        self.scorer_id = f"callable:{name}@{version or 'unversioned'}" if name else f"callable:{callable_identity(fn)}"

    def annotate(self, items: Sequence[AnnotationInput], category: str) -> list[ImageRecord]:
        check_annotate_inputs(items, category, list(self.suite.categories))
        spec = self.suite.categories[category]
        out = list(self.fn([item.image for item in items], category))
        if len(out) != len(items):
            raise ValueError(f"{self.scorer_id}: returned {len(out)} labels for {len(items)} images")
        records = []
        for item, value in zip(items, out, strict=True):
            present: dict[str, list[str]] = {name: [] for name in spec.list_names()}
            if isinstance(value, str):
                if spec.attribute is None:
                    raise ValueError(f"{self.scorer_id}: category {category!r} has no attribute; return a dict")
                labels = {spec.attribute: value}
            elif isinstance(value, Mapping) and "labels" in value:
                labels = dict(value["labels"])
                present.update({k: list(v) for k, v in dict(value.get("present", {})).items()})
            elif isinstance(value, Mapping):
                labels = dict(value)
            else:
                raise TypeError(f"{self.scorer_id}: a label must be a group name or a dict, got {type(value).__name__}")
            for attribute, label in labels.items():
                groups = self.suite.attributes[attribute].groups if attribute in self.suite.attributes else None
                if groups is None:
                    raise ValueError(f"{self.scorer_id}: image {item.image_id}: {attribute!r} is not an attribute")
                if label not in [*groups, "unknown", self.suite.attributes[attribute].unmatched]:
                    raise ValueError(
                        f"{self.scorer_id}: image {item.image_id}: label {label!r} is not a group of {attribute!r}; "
                        f"valid: {list(groups)}"
                    )
            records.append(record_for(item, category, labels, present))
        return records


class LazyAnnotator:
    """A scorer built only when an image needs labels: a warm rerun whose records are all cached never loads
    it (a CLIP ViT-L-14 is seconds and a GPU's memory).

    The records cache is keyed by the scorer id, which only the built scorer tells; with a ``memo_key``
    (:func:`pytest_t2ibias.registry.scorer_memo_key`) the id and the scoring batch are remembered the first
    time it is built. A memo that disagrees with the scorer once built is corrected, and the run fails.
    """

    def __init__(self, load: Callable[[], ImageAnnotator], *, memo_key: str, memo_path: Path | None = None) -> None:
        self._load = load
        self._model: ImageAnnotator | None = None
        self._memo_key = memo_key
        self._memo_path = memo_path or memo_path_of("scorer-ids.json")
        entry = read_memo(self._memo_path).get(memo_key)
        valid = entry is not None and isinstance(entry.get("scorer_id"), str) and _batch_or_none(entry)
        self._remembered: dict[str, Any] | None = entry if valid else None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> ImageAnnotator:
        if self._model is None:
            self._model = self._load()
            known = {"scorer_id": self._model.scorer_id, "scoring_batch": getattr(self._model, "scoring_batch", None)}
            stale = settle(self._memo_path, self._memo_key, self._remembered, known)
            self._remembered = known
            if stale is not None:
                raise SettingsError(
                    f"the remembered scorer id in {self._memo_path} was not the scorer's (remembered "
                    f"{stale['scorer_id']!r}, the scorer has {known['scorer_id']!r}); corrected: run again"
                )
        return self._model

    @property
    def scorer_id(self) -> str:
        if self._model is None and self._remembered is not None:
            return str(self._remembered["scorer_id"])
        return self.model.scorer_id

    @scorer_id.setter
    def scorer_id(self, value: str) -> None:  # the protocol's attribute is settable: set it on the scorer
        self.model.scorer_id = value

    @property
    def scoring_batch(self) -> int | None:
        if self._model is None and self._remembered is not None:
            batch = self._remembered["scoring_batch"]
            return int(batch) if batch is not None else None
        stated = getattr(self.model, "scoring_batch", None)
        return stated if isinstance(stated, int) else None

    def annotate(
        self, items: Sequence[AnnotationInput], category: str, on_progress: Callable[[int], None] | None = None
    ) -> list[ImageRecord]:
        import inspect

        annotate = self.model.annotate
        if on_progress is not None and "on_progress" in inspect.signature(annotate).parameters:
            return annotate(items, category, on_progress=on_progress)  # type: ignore[call-arg]
        records = annotate(items, category)
        if on_progress is not None:
            on_progress(len(items))
        return records


def _batch_or_none(entry: Mapping[str, Any]) -> bool:
    batch = entry.get("scoring_batch", 0)
    return batch is None or (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1)
