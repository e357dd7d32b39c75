"""Run a scorer over human-labelled images: the audit behind a scorer card (``t2ibias audit-scorer``).

The labels file is a CSV, one row per image:

==================  ======================================================================================
column              meaning
==================  ======================================================================================
``path``            the image, relative to the CSV's folder (PNG or any format PIL reads)
``category``        the suite category the image was generated for (optional when ``category=`` is given)
``seed``, ``prompt`` optional: the seed and prompt it was made with (default: the category's first prompt)
``<attribute>``     the human label of a suite attribute (``gender``): a declared group or ``unknown``;
                    an empty cell means "not judged" and leaves the image out of that attribute
``term:<name>``     optional: 1 if a person saw the term in the image, 0 if not (empty: not judged); the
                    scorer's reading is "found in any term list"; ``term:<list>:<name>`` names the list
==================  ======================================================================================

This module only reads the file, checks it against the suite and runs the scorer; turning the pairs
(human, scorer) into a card is :func:`~pytest_t2ibias.metrics.scorer_card.build_card`, in the measure
stage (annotate may not import it).
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pytest_t2ibias._io import clip
from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.errors import LabelsFileError
from pytest_t2ibias.suites.schema import Suite

#: The label of an attribute a person could not tell.
UNKNOWN = "unknown"
TERM_PREFIX = "term:"
_META = ("path", "category", "seed", "prompt")


@dataclass(frozen=True)
class AuditRow:
    """One labelled image of the audit set."""

    line: int
    path: Path
    category: str
    seed: int | None
    prompt: str
    labels: dict[str, str]
    terms: dict[str, bool]


@dataclass
class AuditResult:
    """Per attribute (human labels, scorer labels) and per term (human, scorer) over the audited images,
    with the scorer id, the hash of the images and labels, and each attribute's declared groups."""

    scorer: str
    images_hash: str
    n_images: int
    labels: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    terms: dict[str, tuple[list[bool], list[bool]]] = field(default_factory=dict)
    classes: dict[str, list[str]] = field(default_factory=dict)


def read_audit_labels(path: Path, suite: Suite, category: str | None = None) -> list[AuditRow]:
    """The rows of a labels CSV, checked against the suite (see the module docstring).

    Raises:
        LabelsFileError: the file cannot be read, lacks ``path``, names an unknown attribute, category or
            term, holds a label that is not a group of its attribute, or points at a missing image;
            the message names the file, the line, the column and the value.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise LabelsFileError(f"{path}: cannot read the audit labels: {clip(str(err))}") from None
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    if "path" not in columns:
        raise LabelsFileError(f"{path}: the audit labels need a `path` column, got columns {columns}")
    if "category" not in columns and category is None:
        raise LabelsFileError(f"{path}: no `category` column; give the category (--category) or add the column")
    attributes = [c for c in columns if c not in _META and not c.startswith(TERM_PREFIX)]
    for name in attributes:
        if name not in suite.attributes:
            raise LabelsFileError(
                f"{path}: column `{name}` is not an attribute of suite {suite.name!r}; attributes: "
                f"{list(suite.attributes)} (terms go in `term:<name>` columns)"
            )
    terms = [c.removeprefix(TERM_PREFIX) for c in columns if c.startswith(TERM_PREFIX)]
    rows = []
    for line, raw in enumerate(reader, start=2):
        where = f"{path}:{line}"
        cat = (raw.get("category") or "").strip() or category
        if cat not in suite.categories:
            raise LabelsFileError(
                f"{where}: column `category`: no category {cat!r}; categories: {list(suite.categories)}"
            )
        spec = suite.categories[cat]
        image = path.parent / (raw.get("path") or "").strip()
        if not (raw.get("path") or "").strip() or not image.is_file():
            raise LabelsFileError(
                f"{where}: column `path`: no image file {str(raw.get('path'))!r} (relative to the CSV)"
            )
        seed_text = (raw.get("seed") or "").strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            raise LabelsFileError(f"{where}: column `seed`: not an integer: {seed_text!r}") from None
        labels = {}
        for name in attributes:
            value = (raw.get(name) or "").strip()
            if not value:
                continue
            groups = list(suite.attributes[name].groups)
            if value not in groups and value != UNKNOWN:
                raise LabelsFileError(f"{where}: column `{name}`: {value!r} is not one of {[*groups, UNKNOWN]}")
            labels[name] = value
        present = {}
        for term in terms:
            value = (raw.get(TERM_PREFIX + term) or "").strip()
            if not value:
                continue
            if value not in ("0", "1"):
                raise LabelsFileError(f"{where}: column `{TERM_PREFIX}{term}`: must be 0 or 1, got {value!r}")
            list_name, _, name = term.rpartition(":")
            lists = [list_name] if list_name else spec.list_names()
            if not any(name in spec.term_list(n) for n in lists if n in spec.list_names()):
                what = f"term list {list_name!r}" if list_name else "term list"
                raise LabelsFileError(f"{where}: column `{TERM_PREFIX}{term}`: {name!r} is in no {what} of {cat!r}")
            present[term] = value == "1"
        prompt = (raw.get("prompt") or "").strip() or spec.prompts[0]
        rows.append(AuditRow(line, image, cat, seed, prompt, labels, present))
    if not rows:
        raise LabelsFileError(f"{path}: the audit labels have no rows")
    return rows


def images_hash(rows: list[AuditRow]) -> str:
    """SHA-256 (16 hex digits) of every image's bytes and its human labels, in file order: a card says
    exactly which audit set it was measured on."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(hashlib.sha256(row.path.read_bytes()).digest())
        digest.update(repr((row.category, sorted(row.labels.items()), sorted(row.terms.items()))).encode())
    return digest.hexdigest()[:16]


def run_audit(rows: list[AuditRow], annotator: ImageAnnotator, suite: Suite) -> AuditResult:
    """Score every audited image with ``annotator`` (category by category) and pair its labels with the
    human ones.

    Raises:
        LabelsFileError: an image cannot be opened, or the scorer gives no label of an attribute the row
            judged (the category does not annotate it).
    """
    from PIL import Image

    result = AuditResult(annotator.scorer_id, images_hash(rows), len(rows))
    by_category: dict[str, list[AuditRow]] = defaultdict(list)
    for row in rows:
        by_category[row.category].append(row)
    for category, members in by_category.items():
        items = []
        for row in members:
            try:
                with Image.open(row.path) as img:
                    image = img.convert("RGB")
            except OSError as err:
                raise LabelsFileError(
                    f"{row.path}: cannot open the image (line {row.line}): {clip(str(err))}"
                ) from None
            items.append(AnnotationInput(f"{row.path.name}@{row.line}", image, row.prompt, row.seed, str(row.path)))
        records = annotator.annotate(items, category)
        for row, record in zip(members, records, strict=True):
            for name, human in row.labels.items():
                if name not in record.labels:
                    raise LabelsFileError(
                        f"{row.path} (line {row.line}): the scorer gives no {name!r} label for category "
                        f"{category!r} (it annotates {sorted(record.labels)})"
                    )
                pair = result.labels.setdefault(name, ([], []))
                pair[0].append(human)
                pair[1].append(record.labels[name])
                result.classes.setdefault(name, list(suite.attributes[name].groups))
            found = {t for terms in record.present.values() for t in terms}
            for term, human_bit in row.terms.items():
                list_name, _, name = term.rpartition(":")
                bits = result.terms.setdefault(term, ([], []))
                bits[0].append(human_bit)
                bits[1].append(name in record.present.get(list_name, ()) if list_name else name in found)
    return result
