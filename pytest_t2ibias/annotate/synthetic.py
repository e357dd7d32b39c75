"""Reads the mark of :class:`~pytest_t2ibias.generate.synthetic.SyntheticGenerator` images back exactly.

The labels (primary attribute and every ``also_annotate`` attribute: a declared group or ``unknown``) and
the present terms of every term list are the ones the generator drew, so metrics over these records are
the configured distribution's, up to sampling noise alone. The layout is described in
:mod:`pytest_t2ibias.generate.synthetic`. Any image that is not an exact mark of the category it is read
as (a photo, a JPEG or resized copy, another category's image) raises a ``ValueError`` naming the image.

Example:
    >>> from pytest_t2ibias.annotate.base import AnnotationInput
    >>> from pytest_t2ibias.generate.synthetic import SyntheticGenerator
    >>> from pytest_t2ibias.suites import load_suite
    >>> suite = load_suite("t2i-biasbench")
    >>> prompt = suite.categories["doctor"].prompts[0]
    >>> image = SyntheticGenerator(suite).generate([prompt], [7])[0]
    >>> record = SyntheticAnnotator(suite).annotate([AnnotationInput("doctor_p0_i0", image, prompt, 7)], "doctor")[0]
    >>> record.labels == SyntheticGenerator(suite).draw("doctor", 7).labels
    True
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_t2ibias.annotate.base import AnnotationInput, check_annotate_inputs, record_for
from pytest_t2ibias.generate.synthetic import MARK_VERSION, MarkError, MarkLayout, mark_layout, read_mark
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import Suite


class SyntheticAnnotator:
    """Labels and presence read from the synthetic mark; no caption, embedding or CLIPScore.

    Args:
        suite: the suite the images were generated for (its groups and lists fix the layout).

    Raises:
        ValueError: a category of the suite does not fit the mark (see
            :func:`~pytest_t2ibias.generate.synthetic.mark_layout`).
    """

    scorer_id = f"synthetic-mark-reader:v{MARK_VERSION}"

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self._layouts: dict[str, MarkLayout] = {name: mark_layout(suite, name) for name in suite.categories}

    def annotate(self, items: Sequence[AnnotationInput], category: str) -> list[ImageRecord]:
        check_annotate_inputs(items, category, list(self.suite.categories))
        layout = self._layouts[category]
        return [self._record(item, layout) for item in items]

    def _record(self, item: AnnotationInput, layout: MarkLayout) -> ImageRecord:
        try:
            outcomes, bits = read_mark(layout, item.image)
        except MarkError as err:
            raise ValueError(
                f"image {item.image_id!r} carries no synthetic mark of category {layout.category!r}: {err}"
                f"{self._other_category(item, layout)}"
            ) from None
        labels = {name: names[i] for (name, names), i in zip(layout.attributes, outcomes, strict=True)}
        present: dict[str, list[str]] = {}
        start = 0
        for name, terms in layout.lists:
            present[name] = [t for t, hit in zip(terms, bits[start : start + len(terms)], strict=True) if hit]
            start += len(terms)
        return record_for(item, layout.category, labels, present)

    def _other_category(self, item: AnnotationInput, layout: MarkLayout) -> str:
        # Only worth the extra reads once an image has failed: name the category it does belong to.
        for name, other in self._layouts.items():
            if name == layout.category:
                continue
            try:
                read_mark(other, item.image)
            except MarkError:
                continue
            return f" (it is an image of category {name!r})"
        return ""
