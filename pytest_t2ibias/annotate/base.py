"""The annotator interface: images of one category in, one :class:`ImageRecord` per image out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from pytest_t2ibias.records import ImageRecord


@dataclass(frozen=True)
class AnnotationInput:
    """One image to annotate, with what is known about how it was made."""

    image_id: str
    image: Image.Image
    prompt: str
    seed: int | None = None
    image_path: str | None = None


@dataclass(frozen=True)
class ImageRef:
    """A planned image by its id, without the image: what a labels lookup needs."""

    image_id: str
    prompt: str
    seed: int | None = None
    image_path: str | None = None


@runtime_checkable
class LabelLookup(Protocol):
    """An annotator whose labels exist before any image (precomputed human labels): the pipeline asks it
    for the plan's image ids, and generates nothing. ``needs_images`` is ``False``."""

    scorer_id: str
    needs_images: bool

    def lookup(self, refs: Sequence[ImageRef], category: str) -> list[ImageRecord]: ...

    def check_planned(self, planned_ids: Sequence[str]) -> None: ...


@runtime_checkable
class ImageAnnotator(Protocol):
    """Turns images into records using a suite's groups and term lists (given at construction).

    ``scorer_id`` names the scorer and every setting that changes its labels (model, thresholds); a
    baseline recorded with another scorer id is stale.
    """

    scorer_id: str

    def annotate(self, items: Sequence[AnnotationInput], category: str) -> list[ImageRecord]: ...


def texts_hash(*texts: str) -> str:
    """A short hash of the fixed texts an annotator asks with (templates, contrast phrases): it goes
    into the scorer id, so editing them makes old baselines stale instead of silently comparable."""
    import hashlib

    return hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:8]


def record_for(
    item: AnnotationInput | ImageRef,
    category: str,
    labels: dict[str, str],
    present: dict[str, list[str]],
    **measured: Any,
) -> ImageRecord:
    """The record of one annotated image: what the annotator decided, plus what the image carried."""
    from pytest_t2ibias.records import ImageRecord

    return ImageRecord(
        image_id=item.image_id,
        category=category,
        labels=labels,
        present=present,
        seed=item.seed,
        prompt=item.prompt,
        image_path=item.image_path,
        **measured,
    )


def check_annotate_inputs(items: Sequence[AnnotationInput], category: str, categories: Sequence[str]) -> None:
    """Shared input check for annotators."""
    if category not in categories:
        raise ValueError(f"`category` must be one of {list(categories)}, got {category!r}")
    ids = [item.image_id for item in items]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"`items` have duplicate image ids: {dupes[:5]}")
