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

**A noisy scorer** (``confusion``). To test what scorer errors do to the metrics, and the correction of
them with a scorer card (``docs/scorer-audit.md``), the annotator can misread the mark at set rates: per
attribute, per true group, the rate at which it reports each other group (or ``unknown``); the rest of the
mass stays on the true group. In YAML, for the scorer spec ``synthetic:PATH``::

    confusion:
      gender:
        female: {male: 0.10}     # 10% of women read as men
        male: {female: 0.02}     # 2% of men read as women
    stream: 0                    # optional: which independent misreading stream (default 0)

Each misreading is decided by a uniform derived from the image's seed (its id when it has no seed), the
category, the attribute and ``stream`` through a fixed hash (SHA-256), never from a global generator:
the same image is always misread the same way, two runs on the same seeds are misread alike (paired),
and the misreading is independent of the label drawn (non-differential error). The confusion (and
stream) enters the scorer id, so a baseline or card recorded with other error rates is stale.

    >>> noisy = SyntheticAnnotator(suite, confusion={"gender": {"female": {"male": 1.0}}})
    >>> noisy.scorer_id != SyntheticAnnotator(suite).scorer_id
    True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_t2ibias.annotate.base import AnnotationInput, check_annotate_inputs, record_for
from pytest_t2ibias.errors import SyntheticConfigError
from pytest_t2ibias.generate.synthetic import (
    MARK_VERSION,
    UNKNOWN,
    MarkError,
    MarkLayout,
    Probability,
    mark_layout,
    read_mark,
)
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.loader import format_validation_error
from pytest_t2ibias.suites.schema import Suite

#: attribute -> true group -> {reported group: rate}
Confusion = Mapping[str, Mapping[str, Mapping[str, float]]]


class ScorerConfig(BaseModel):
    """The synthetic scorer's settings (``synthetic:PATH``): its confusion and misreading stream."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confusion: dict[str, dict[str, dict[str, Probability]]] = Field(default_factory=dict)
    stream: Annotated[int, Field(strict=True, ge=0)] = 0


def load_scorer_config(path: Path) -> ScorerConfig:
    """A :class:`ScorerConfig` from a YAML file; errors name the file and the field."""
    from pytest_t2ibias._io import clip, load_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SyntheticConfigError(f"{path}: cannot read synthetic scorer config: {clip(str(err))}") from None
    data = load_yaml(text, str(path), SyntheticConfigError)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SyntheticConfigError(f"{path}: a synthetic scorer config must be a mapping, got {type(data).__name__}")
    try:
        return ScorerConfig.model_validate(dict(data))
    except ValidationError as err:
        raise SyntheticConfigError(format_validation_error(str(path), err)) from None


def misread_uniform(key: str | int, category: str, attribute: str, stream: int = 0) -> float:
    """The uniform in [0, 1) that decides whether (and how) an image's ``attribute`` is misread: a fixed
    hash of the image's seed (or id), the category, the attribute and the stream.

    Example:
        >>> misread_uniform(7, "doctor", "gender") == misread_uniform(7, "doctor", "gender")
        True
    """
    digest = hashlib.sha256(f"synthetic-misread|{stream}|{category}|{attribute}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class SyntheticAnnotator:
    """Labels and presence read from the synthetic mark; no caption, embedding or CLIPScore.

    Args:
        suite: the suite the images were generated for (its groups and lists fix the layout).

        confusion: per attribute, per true group, the rate of each wrong report (see the module docstring).
        stream: which independent misreading stream.
        source: names the configuration in errors.

    Raises:
        ValueError: a category of the suite does not fit the mark (see
            :func:`~pytest_t2ibias.generate.synthetic.mark_layout`).
        SyntheticConfigError: the confusion names an attribute or group the suite lacks, or a true
            group's error rates sum above 1.
    """

    def __init__(
        self, suite: Suite, confusion: Confusion | None = None, stream: int = 0, source: str = "synthetic scorer"
    ) -> None:
        self.suite = suite
        self._layouts: dict[str, MarkLayout] = {name: mark_layout(suite, name) for name in suite.categories}
        self.confusion = {a: {t: dict(r) for t, r in rows.items()} for a, rows in (confusion or {}).items()}
        self.stream = stream
        _check_confusion(self.confusion, suite, source)
        self.scorer_id = f"synthetic-mark-reader:v{MARK_VERSION}"
        if self.confusion:
            blob = json.dumps({"confusion": self.confusion, "stream": stream}, sort_keys=True)
            self.scorer_id += "+confusion:" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_spec(cls, spec: str, suite: Suite) -> SyntheticAnnotator:
        """``synthetic`` (reads the mark exactly) or ``synthetic:PATH`` (a YAML :class:`ScorerConfig`)."""
        if spec == "synthetic":
            return cls(suite)
        path = Path(spec.removeprefix("synthetic:"))
        if not spec.startswith("synthetic:") or not str(path):
            raise ValueError(f"`spec` must be 'synthetic' or 'synthetic:PATH', got {spec!r}")
        config = load_scorer_config(path)
        return cls(suite, config.confusion, config.stream, source=str(path))

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
        for name, rows in self.confusion.items():
            if name in labels and labels[name] in rows:
                key = item.seed if item.seed is not None else item.image_id
                labels[name] = misread_label(
                    labels[name], rows[labels[name]], misread_uniform(key, layout.category, name, self.stream)
                )
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


def misread_label(true: str, rates: Mapping[str, float], u: float) -> str:
    """The label reported for ``true`` given the uniform ``u``: each wrong label takes its rate's slice of
    [0, 1) in sorted order, the rest reads true."""
    edge = 0.0
    for label in sorted(rates):
        if label == true:
            continue
        edge += rates[label]
        if u < edge:
            return label
    return true


def _check_confusion(confusion: Confusion, suite: Suite, source: str) -> None:
    for attribute, rows in confusion.items():
        where = f"{source}: field `confusion.{attribute}"
        if attribute not in suite.attributes:
            raise SyntheticConfigError(f"{where}`: no attribute {attribute!r}; attributes: {list(suite.attributes)}")
        outcomes = [*suite.attributes[attribute].groups, UNKNOWN]
        for true, rates in rows.items():
            for label in (true, *rates):
                if label not in outcomes:
                    raise SyntheticConfigError(f"{where}.{true}`: {label!r} is not one of {outcomes}")
            for label, rate in rates.items():
                if not 0.0 <= rate <= 1.0:
                    raise SyntheticConfigError(f"{where}.{true}.{label}`: a rate must be in [0, 1], got {rate!r}")
            wrong = math.fsum(r for label, r in rates.items() if label != true)
            if wrong > 1.0 + 1e-9:
                raise SyntheticConfigError(f"{where}.{true}`: error rates sum to {wrong:.6g} > 1")


def confusion_matrix_of(annotator: SyntheticAnnotator, attribute: str) -> tuple[list[str], Any]:
    """The expected confusion matrix (rows true, columns reported) the annotator's settings give for
    ``attribute``: its declared groups then ``unknown``."""
    outcomes = [*annotator.suite.attributes[attribute].groups, UNKNOWN]
    m = np.eye(len(outcomes))
    for true, rates in annotator.confusion.get(attribute, {}).items():
        t = outcomes.index(true)
        for label, rate in rates.items():
            if label != true:
                m[t, outcomes.index(label)] += rate
                m[t, t] -= rate
    return outcomes, m
