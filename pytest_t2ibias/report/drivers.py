"""Which images push a metric the wrong way: the registry's ``drivers`` applied to a category's images.

A pure function of the per-image results, so the HTML report (from a results file, long after the run)
and a failing assertion (during the run) name the same images.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pytest_t2ibias.metrics.registry import METRICS, metric_def
from pytest_t2ibias.suites.schema import JOINT, VIEW

if TYPE_CHECKING:
    from pytest_t2ibias.results import ImageResult
    from pytest_t2ibias.suites.schema import Category

#: How many driving images a failure names by default.
DEFAULT_DRIVERS = 5
#: The label of an image the scorer could not place in a group.
UNKNOWN = "unknown"


def drivers_of(metric_id: str, category_spec: Category | None) -> str:
    """The registry's ``drivers`` of a metric (``top_group`` when the metric is unknown)."""
    if metric_id == "distinct_markers":  # assert_cultural_coverage's own check, not a registered metric
        return "fewest:cultural_markers"
    definition = METRICS.get(metric_id)
    if definition is None and category_spec is not None:
        definition = metric_def(metric_id, category_spec)
    if definition is not None:
        return definition.drivers
    if metric_id.endswith("_ratio"):
        return f"fewest:{metric_id[: -len('_ratio')]}"
    return "top_group"


def attribute_under_test(images: Sequence[ImageResult], category_spec: Category | None) -> str | None:
    """The category's attribute: the suite's word, else the first label the images carry."""
    if category_spec is not None and category_spec.attribute:
        return category_spec.attribute
    return next((name for image in images for name in image.labels), None)


def driving_image_ids(
    images: Sequence[ImageResult],
    metric_id: str,
    category_spec: Category | None,
    k: int = DEFAULT_DRIVERS,
    *,
    clip_scores: Mapping[str, float] | None = None,
) -> tuple[str, list[str]]:
    """What kind of images push ``metric_id`` the wrong way, and the ids of up to ``k`` of them (in the
    order of ``images``, or worst first for a ranking).

    ``clip_scores`` (image id -> CLIP score) ranks the images for ``clip_score`` drivers; results files
    keep no per-image CLIP score, so without it those metrics name no images.

    Example:
        >>> from pytest_t2ibias.results import ImageResult
        >>> images = [ImageResult(id=f"i{n}", labels={"gender": g}) for n, g in enumerate("mfmmu")]
        >>> driving_image_ids(images, "parity_difference", None, k=2)
        ("images of the most frequent gender group 'm' (3 of 5)", ['i0', 'i2'])
    """
    kind, _, list_name = drivers_of(metric_id, category_spec).partition(":")
    attribute = attribute_under_test(images, category_spec)
    measured = metric_id.partition(VIEW)[2]
    if measured and category_spec is not None:  # `fd@ethnicity`: the images of the groups of ethnicity
        attribute = measured
        if measured == category_spec.joint() and category_spec.intersect:
            images = [_with_joint_label(image, measured, category_spec.intersect) for image in images]
    if kind == "most":
        what = f"images with {list_name.replace('_', ' ')} terms"
        chosen = [image for image in images if image.present.get(list_name)]
    elif kind == "fewest":
        what = f"images with the fewest {list_name.replace('_', ' ')} terms"
        chosen = sorted(images, key=lambda image: len(image.present.get(list_name, [])))
    elif kind == "unknown" and attribute:
        what = f"images with no {attribute} label"
        chosen = [image for image in images if image.labels.get(attribute) == UNKNOWN]
    elif kind == "clip_score":
        what, chosen = _least_like_prompt(images, clip_scores)
    elif attribute:
        what, chosen = _top_group(images, attribute)
    else:
        what, chosen = "images", list(images)
    return what, [image.id for image in chosen[: max(k, 0)]]


def _least_like_prompt(
    images: Sequence[ImageResult], clip_scores: Mapping[str, float] | None
) -> tuple[str, list[ImageResult]]:
    if not clip_scores:
        return "images least like their prompt (the results keep no per-image CLIP score)", []
    scored = [image for image in images if image.id in clip_scores]
    return "images least like their prompt", sorted(scored, key=lambda image: clip_scores[image.id])


def _top_group(images: Sequence[ImageResult], attribute: str) -> tuple[str, list[ImageResult]]:
    counts = Counter(image.labels.get(attribute, UNKNOWN) for image in images)
    if not counts:
        return f"images of the most frequent {attribute} group (no images)", []
    # ties go to the label seen first, so the choice follows the images' order, not a hash
    top = max(counts, key=lambda group: counts[group])
    what = f"images of the most frequent {attribute} group {top!r} ({counts[top]} of {len(images)})"
    return what, [image for image in images if image.labels.get(attribute, UNKNOWN) == top]


def _with_joint_label(image: ImageResult, joint: str, parts: Sequence[str]) -> ImageResult:
    """The image with its label of the joint attribute (its parts' labels joined; unknown if one is)."""
    labels = [image.labels.get(part, UNKNOWN) for part in parts]
    label = UNKNOWN if UNKNOWN in labels else JOINT.join(labels)
    return image.model_copy(update={"labels": {**image.labels, joint: label}})
