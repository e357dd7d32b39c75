"""The scorer card: how often a scorer was wrong on human-labelled images, as a versioned JSON file.

``t2ibias audit-scorer`` writes one (:func:`build_card`, :func:`write_card`); measurement reads it
(:func:`load_card`, :func:`check_card_scorer`) to correct the metrics for misclassification
(:mod:`~pytest_t2ibias.metrics.corrected`). The card lives in ``metrics``, not ``judge``: it is read at
measure time, and ``metrics`` may not import from the judge (the judge only reads the card's kappa).

Per attribute: the classes, the confusion matrix (rows true, columns predicted), each class's sensitivity
and specificity with exact (Clopper-Pearson) 95% intervals, and Cohen's kappa with a bootstrap interval.
Per term: presence counts against the human judgement, precision, recall (sensitivity) and specificity.

Example:
    >>> card = build_card(
    ...     "synthetic-mark-reader:v1",
    ...     "0" * 16,
    ...     {"gender": (["male"] * 50 + ["female"] * 50, ["male"] * 49 + ["female"] * 46 + ["male"] * 5)},
    ...     classes={"gender": ["female", "male"]},
    ... )
    >>> card.attributes["gender"].confusion
    [[45, 5], [1, 49]]
    >>> round(card.attributes["gender"].sensitivity["female"].value, 2)
    0.9
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_t2ibias._io import clip, write_text_atomic
from pytest_t2ibias.errors import T2IBiasError
from pytest_t2ibias.metrics.intervals import exact_interval
from pytest_t2ibias.metrics.misclassification import cohens_kappa, confusion_matrix, kappa_draws, percentile_interval

#: Version of the card's JSON shape.
CARD_FORMAT: Literal[1] = 1
#: Bootstrap draws for kappa's interval (seeded).
KAPPA_DRAWS = 2000


class ScorerCardError(T2IBiasError):
    """A scorer card that cannot be read or does not fit; the message names the file and field."""


class StaleScorerCardError(ScorerCardError):
    """A scorer card recorded for another scorer (or scorer settings) than the run's."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    """A rate with its 95% interval and the counts behind it (``None`` when no image could tell)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    successes: int = 0
    n: int = 0


class AttributeCard(_Strict):
    """How the scorer read one attribute on the audit images."""

    classes: list[str]
    confusion: list[list[int]] = Field(description="Counts: rows the human label, columns the scorer's.")
    sensitivity: dict[str, Rate]
    specificity: dict[str, Rate]
    kappa: Rate

    @model_validator(mode="after")
    def _shape(self) -> AttributeCard:
        k = len(self.classes)
        if len(set(self.classes)) != k or k == 0:
            raise ValueError(f"classes must be distinct and non-empty, got {self.classes}")
        if len(self.confusion) != k or any(len(row) != k for row in self.confusion):
            raise ValueError(f"confusion must be {k}x{k} (one row and column per class)")
        if any(x < 0 for row in self.confusion for x in row):
            raise ValueError("confusion has a negative count")
        return self

    @property
    def n(self) -> int:
        return sum(sum(row) for row in self.confusion)

    def matrix(self) -> np.ndarray:
        return np.array(self.confusion, dtype=np.int64)


class TermCard(_Strict):
    """How the scorer judged one term's presence: counts against the human judgement, and the rates."""

    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    precision: Rate
    recall: Rate
    specificity: Rate


class ScorerCard(_Strict):
    """One scorer's audit: per attribute and per term, how often it agreed with people."""

    format: Literal[1] = CARD_FORMAT
    scorer: str = Field(description="The scorer id the card was measured for; another scorer's run refuses it.")
    images_hash: str = Field(description="Hash of the audit images and their human labels.")
    n_images: int
    attributes: dict[str, AttributeCard] = Field(default_factory=dict)
    terms: dict[str, TermCard] = Field(default_factory=dict)


def _rate(successes: int, n: int) -> Rate:
    if n == 0:
        return Rate(value=None)
    iv = exact_interval(successes, n)
    return Rate(value=successes / n, low=iv.low, high=iv.high, successes=successes, n=n)


def attribute_card(classes: list[str], confusion: np.ndarray, seed: int = 0) -> AttributeCard:
    """The card of one attribute from its confusion matrix (rows true, columns predicted)."""
    c = np.asarray(confusion, dtype=np.int64)
    sens, spec = {}, {}
    for k, name in enumerate(classes):
        row = int(c[k].sum())
        sens[name] = _rate(int(c[k, k]), row)
        others = np.delete(np.arange(len(classes)), k)
        not_k = int(c[others].sum())
        spec[name] = _rate(int(c[np.ix_(others, others)].sum()), not_k)
    kappa = float(cohens_kappa(c))
    if np.isfinite(kappa):
        low, high = percentile_interval(kappa_draws(c, KAPPA_DRAWS, seed))
        kappa_rate = Rate(value=kappa, low=low, high=high, successes=int(np.trace(c)), n=int(c.sum()))
    else:
        kappa_rate = Rate(value=None, successes=int(np.trace(c)), n=int(c.sum()))
    return AttributeCard(classes=classes, confusion=c.tolist(), sensitivity=sens, specificity=spec, kappa=kappa_rate)


def term_card(human: Sequence[bool], scorer: Sequence[bool]) -> TermCard:
    """The card of one term from per-image presence judgements (human, scorer)."""
    h, s = np.asarray(human, dtype=bool), np.asarray(scorer, dtype=bool)
    tp, fp = int((h & s).sum()), int((~h & s).sum())
    fn, tn = int((h & ~s).sum()), int((~h & ~s).sum())
    return TermCard(
        true_positive=tp,
        false_positive=fp,
        false_negative=fn,
        true_negative=tn,
        precision=_rate(tp, tp + fp),
        recall=_rate(tp, tp + fn),
        specificity=_rate(tn, tn + fp),
    )


def build_card(
    scorer: str,
    images_hash: str,
    labels: Mapping[str, tuple[Sequence[str], Sequence[str]]],
    terms: Mapping[str, tuple[Sequence[bool], Sequence[bool]]] | None = None,
    *,
    classes: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
) -> ScorerCard:
    """A card from the audit: per attribute (human labels, scorer labels), per term (human, scorer).

    Args:
        classes: per attribute, the classes in order (the suite's declared groups); labels seen that are
            not among them (``unknown``) are appended in sorted order. Default: every label seen, sorted.
    """
    attributes = {}
    n_images = 0
    for name, (human, predicted) in labels.items():
        given = list((classes or {}).get(name, ()))
        seen = sorted((set(human) | set(predicted)) - set(given))
        order = given + seen
        attributes[name] = attribute_card(order, confusion_matrix(human, predicted, order), seed)
        n_images = max(n_images, len(human))
    term_cards = {}
    for term, (human_bits, scorer_bits) in (terms or {}).items():
        term_cards[term] = term_card(human_bits, scorer_bits)
        n_images = max(n_images, len(human_bits))
    return ScorerCard(
        scorer=scorer, images_hash=images_hash, n_images=n_images, attributes=attributes, terms=term_cards
    )


def write_card(path: Path, card: ScorerCard) -> None:
    """Write the card as JSON, atomically (a killed run leaves the old card or the new one)."""
    write_text_atomic(Path(path), card.model_dump_json(indent=1) + "\n")


def load_card(path: str | Path) -> ScorerCard:
    """Read a card.

    Raises:
        ScorerCardError: the file is missing, not JSON, or does not match the schema (naming file and field).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScorerCardError(f"scorer card {path}: cannot read it: {clip(str(err))}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ScorerCardError(f"scorer card {path}: not JSON (line {err.lineno}: {err.msg})") from None
    if isinstance(data, dict) and data.get("format") not in (None, CARD_FORMAT):
        raise ScorerCardError(f"scorer card {path}: field `format`: unsupported version {data.get('format')!r}")
    try:
        return ScorerCard.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise ScorerCardError(f"scorer card {path}: field `{where}`: {clip(first['msg'])}") from None


def check_card_scorer(card: ScorerCard, scorer: str, source: str = "scorer card") -> None:
    """Refuse a card measured for another scorer id, like a stale baseline.

    Raises:
        StaleScorerCardError: ``card.scorer`` is not ``scorer``.
    """
    if card.scorer != scorer:
        raise StaleScorerCardError(
            f"{source}: stale: recorded for scorer {card.scorer!r}, the run's scorer is {scorer!r}; "
            "audit this scorer again (t2ibias audit-scorer)"
        )


def _fmt(rate: Rate) -> str:
    if rate.value is None:
        return "n/a"
    return f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}]"


def card_summary(card: ScorerCard) -> list[str]:
    """The card as readable lines: per attribute its confusion matrix, sensitivity/specificity and kappa."""
    lines = [f"scorer card: {card.scorer} ({card.n_images} audit images, hash {card.images_hash[:12]})"]
    for name, attr in card.attributes.items():
        lines.append(f"{name}: kappa {_fmt(attr.kappa)}  (rows: human label, columns: scorer)")
        width = max(8, *(len(c) for c in attr.classes)) + 1
        lines.append(" " * width + "".join(c.rjust(width) for c in attr.classes))
        for cls, row in zip(attr.classes, attr.confusion, strict=True):
            lines.append(cls.ljust(width) + "".join(str(x).rjust(width) for x in row))
        for cls in attr.classes:
            if attr.sensitivity[cls].value is None and attr.specificity[cls].value is None:
                continue
            lines.append(
                f"  {cls}: sensitivity {_fmt(attr.sensitivity[cls])}, specificity {_fmt(attr.specificity[cls])}"
            )
    for term, tc in card.terms.items():
        lines.append(
            f"term {term}: precision {_fmt(tc.precision)}, recall {_fmt(tc.recall)} "
            f"(tp {tc.true_positive}, fp {tc.false_positive}, fn {tc.false_negative}, tn {tc.true_negative})"
        )
    return lines
