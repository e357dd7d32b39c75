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
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_t2ibias._io import clip, short_repr, write_text_atomic
from pytest_t2ibias.errors import ScorerCardError as ScorerCardError
from pytest_t2ibias.errors import StaleScorerCardError as StaleScorerCardError
from pytest_t2ibias.metrics.binomial import exact_interval
from pytest_t2ibias.metrics.misclassification import cohens_kappa, confusion_matrix, kappa_draws, percentile_interval

#: Version of the card's JSON shape.
CARD_FORMAT: Literal[1] = 1
#: Bootstrap draws for kappa's interval (seeded).
KAPPA_DRAWS = 2000
#: The most images (and so any count) a card may state: far above any human-labelled audit, far below
#: where float arithmetic on the counts loses integers (2**53) or numpy's int64 overflows.
MAX_CARD_COUNT = 10**9
#: How far a stored rate or kappa may be from the one its counts give: JSON keeps a float's 17 digits, so a
#: card written by :func:`write_card` agrees exactly; more than this is an edit (or a different formula).
CARD_TOLERANCE = 1e-9
#: The deepest nesting a card's JSON may have (a card is 5 levels deep): deeper is refused before parsing,
#: so a 100,000-deep ``[[[[...`` is one line, not a RecursionError.
MAX_CARD_DEPTH = 20
#: The largest card file read (a card of 50 attributes of 50 classes is well under 1 MB).
MAX_CARD_BYTES = 20_000_000

#: A count on a card: 0 to :data:`MAX_CARD_COUNT`.
Count = Annotated[int, Field(ge=0, le=MAX_CARD_COUNT)]
#: A rate or a kappa (or an end of its interval): finite, from -1 (kappa) to 1.
Share = Annotated[float, Field(allow_inf_nan=False, ge=-1.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    """A rate with its 95% interval and the counts behind it (``None`` when no image could tell)."""

    value: Share | None
    low: Share | None = None
    high: Share | None = None
    successes: Count = 0
    n: Count = 0


class AttributeCard(_Strict):
    """How the scorer read one attribute on the audit images."""

    classes: list[str]
    confusion: list[list[Count]] = Field(description="Counts: rows the human label, columns the scorer's.")
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

    true_positive: Count
    false_positive: Count
    false_negative: Count
    true_negative: Count
    precision: Rate
    recall: Rate
    specificity: Rate


class ScorerCard(_Strict):
    """One scorer's audit: per attribute and per term, how often it agreed with people."""

    format: Literal[1] = CARD_FORMAT
    scorer: str = Field(description="The scorer id the card was measured for; another scorer's run refuses it.")
    images_hash: str = Field(description="Hash of the audit images and their human labels.")
    n_images: Count
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
    rates = _attribute_rates(classes, c)
    sens, spec = rates["sensitivity"], rates["specificity"]
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
    """Read a card, and check every figure on it against its own counts.

    The rates and kappa a policy trusts are recomputed from the confusion matrices and the term counts
    (:func:`check_card_figures`): a card whose stored figures disagree was edited or corrupted, and is
    refused rather than believed (a stored kappa of NaN or 0.99 would otherwise pass ``min_kappa``).

    Raises:
        ScorerCardError: the file is missing, too large or too deeply nested, not JSON, does not match the
            schema, or its figures contradict its counts; one line naming the file, the field and the value.
    """
    path = Path(path)
    source = f"scorer card {path}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CARD_BYTES + 1)
    except OSError as err:
        raise ScorerCardError(f"{source}: cannot read it: {clip(str(err))}") from None
    if len(raw) > MAX_CARD_BYTES:
        raise ScorerCardError(f"{source}: larger than {MAX_CARD_BYTES:,} bytes; not a scorer card")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScorerCardError(f"{source}: not JSON (not UTF-8 text)") from None
    depth = _json_depth(text)
    if depth > MAX_CARD_DEPTH:
        raise ScorerCardError(f"{source}: nested {depth} levels deep (a card has at most {MAX_CARD_DEPTH}); not a card")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise ScorerCardError(f"{source}: not JSON (line {err.lineno}: {err.msg})") from None
    except ValueError as err:  # NaN / Infinity, or an integer of more than 4,300 digits
        raise ScorerCardError(f"{source}: {clip(str(err))}") from None
    if isinstance(data, dict) and data.get("format") not in (None, CARD_FORMAT):
        raise ScorerCardError(f"{source}: field `format`: unsupported version {short_repr(data.get('format'))}")
    try:
        card = ScorerCard.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        shown = f" (got {short_repr(first['input'], 60)})" if "input" in first and where != "(top level)" else ""
        raise ScorerCardError(f"{source}: field `{where}`: {clip(first['msg'])}{shown}") from None
    check_card_figures(card, source)
    return card


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a card may hold (every rate and count is finite)")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` in a JSON text (strings skipped), without parsing it: cheap, and
    safe on a depth bomb that would make ``json.loads`` raise RecursionError."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _disagree(stored: float | None, computed: float | None) -> bool:
    if stored is None or computed is None:
        return stored is not computed
    return not abs(stored - computed) <= CARD_TOLERANCE  # "not <=": a NaN disagrees


def _rate_problems(field: str, stored: Rate, computed: Rate) -> Iterator[str]:
    for name in ("successes", "n", "value", "low", "high"):
        have, want = getattr(stored, name), getattr(computed, name)
        if _disagree(have, want):
            yield f"field `{field}.{name}`: stored {short_repr(have)}, its counts give {short_repr(want)}"


def check_card_figures(card: ScorerCard, source: str = "scorer card") -> None:
    """Every derived figure of ``card`` recomputed from its counts; the first that disagrees is an error.

    Per attribute: the matrix must hold at least one image; each class's sensitivity and specificity
    (value, interval and counts) and kappa's value and counts are what the confusion matrix gives, within
    :data:`CARD_TOLERANCE`; kappa's bootstrap interval must contain its value. Per term: precision, recall
    and specificity are what the four counts give. ``n_images`` is the largest number of images of an
    attribute or term.

    Raises:
        ScorerCardError: ``"<source>: field `attributes.gender.kappa.value`: stored 0.99, its counts give 0.8"``.
    """
    sizes: list[int] = []
    for attr_name, attr in card.attributes.items():
        where = f"attributes.{attr_name}"
        c = attr.matrix()
        total = int(c.sum())
        if total == 0:
            raise ScorerCardError(f"{source}: field `{where}.confusion`: holds no image (every count is 0)")
        if total > MAX_CARD_COUNT:
            raise ScorerCardError(
                f"{source}: field `{where}.confusion`: {total:,} images, more than {MAX_CARD_COUNT:,}"
            )
        sizes.append(total)
        expected = _attribute_rates(attr.classes, c)
        for kind in ("sensitivity", "specificity"):
            stored_rates: dict[str, Rate] = getattr(attr, kind)
            if set(stored_rates) != set(attr.classes):
                raise ScorerCardError(
                    f"{source}: field `{where}.{kind}`: classes {short_repr(sorted(stored_rates))}, "
                    f"the matrix's are {short_repr(attr.classes)}"
                )
            for cls in attr.classes:
                for problem in _rate_problems(f"{where}.{kind}.{cls}", stored_rates[cls], expected[kind][cls]):
                    raise ScorerCardError(f"{source}: {problem}")
        kappa = float(cohens_kappa(c))
        stored = attr.kappa
        want_value = kappa if math.isfinite(kappa) else None
        checks = (
            ("value", stored.value, want_value),
            ("successes", stored.successes, int(np.trace(c))),
            ("n", stored.n, total),
        )
        for name, have, want in checks:
            if _disagree(have, want):
                shown = f"stored {short_repr(have)}, its counts give {short_repr(want)}"
                raise ScorerCardError(f"{source}: field `{where}.kappa.{name}`: {shown}")
        if stored.value is not None and not (
            stored.low is not None and stored.high is not None and stored.low <= stored.value <= stored.high
        ):
            interval = f"interval [{stored.low}, {stored.high}]"
            raise ScorerCardError(f"{source}: field `{where}.kappa`: {interval} does not contain {stored.value}")
    for term, tc in card.terms.items():
        where = f"terms.{term}"
        tp, fp, fn, tn = tc.true_positive, tc.false_positive, tc.false_negative, tc.true_negative
        sizes.append(tp + fp + fn + tn)
        for name, stored, computed in (
            ("precision", tc.precision, _rate(tp, tp + fp)),
            ("recall", tc.recall, _rate(tp, tp + fn)),
            ("specificity", tc.specificity, _rate(tn, tn + fp)),
        ):
            for problem in _rate_problems(f"{where}.{name}", stored, computed):
                raise ScorerCardError(f"{source}: {problem}")
    if sizes and card.n_images != max(sizes):
        raise ScorerCardError(
            f"{source}: field `n_images`: stored {card.n_images}, its attributes and terms hold {max(sizes)} images"
        )


def _attribute_rates(classes: list[str], c: np.ndarray) -> dict[str, dict[str, Rate]]:
    """Per class, the sensitivity and specificity :func:`attribute_card` stores (no bootstrap: cheap)."""
    sens, spec = {}, {}
    for k, name in enumerate(classes):
        sens[name] = _rate(int(c[k, k]), int(c[k].sum()))
        others = np.delete(np.arange(len(classes)), k)
        spec[name] = _rate(int(c[np.ix_(others, others)].sum()), int(c[others].sum()))
    return {"sensitivity": sens, "specificity": spec}


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
