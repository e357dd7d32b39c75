"""Precomputed labels: human (or any offline) annotation read from a CSV or JSON file.

Scorer spec ``labels:PATH`` (see :mod:`pytest_t2ibias.annotate.factory`). The file gives, per image id,
a label for attributes of the suite and the terms of each term list present in the image. Everything is
checked against the suite when the file is loaded, and against the image's category when it is
annotated; a bad value raises :class:`LabelsFileError` naming the file, the image id (and the CSV line),
the field and the value. The scorer id is ``labels:<file name>#<first 12 hex of the file's sha256>``,
so a baseline recorded from other labels is stale.

JSON: one object keyed by image id (no wrapper); each value has ``labels`` (attribute -> group, or
``unknown``, or the attribute's ``unmatched`` label such as ``other``) and ``present`` (term list ->
terms present; ``[]`` means none)::

    {
      "doctor_p0_i0": {
        "labels": {"gender": "female", "ethnicity": "unknown"},
        "present": {"explicit": ["doctor", "surgery"], "implied": [], "unexpected": [], "keywords": []}
      },
      "animal_p0_i0": {
        "labels": {"species": "rat"},
        "present": {"explicit": ["animal"], "implied": [], "unexpected": [], "keywords": [],
                    "puzzle": ["maze"], "lab": []}
      }
    }

CSV: a header ``image_id`` then one column per attribute (cell: a group or ``unknown``; empty: not
labelled) and one column per term list (cell: the terms present, separated by ``|``; empty: none)::

    image_id,gender,ethnicity,explicit,implied,unexpected,keywords
    doctor_p0_i0,female,unknown,doctor|surgery,,,
    doctor_p0_i1,male,white,doctor,gloves|mask,,doctor

Rules, for both formats:

* attribute names must be attributes of the suite, list names term lists (``explicit``, ...) or context
  lists of the suite; a term must be in that list of some category of the suite;
* when annotating a category, the image must label the category's ``attribute`` and give every term list
  the category declares (an empty list / cell says "none present"); labels of the category's
  ``also_annotate`` attributes are kept when given; labels of other (declared) attributes and empty lists
  the category does not declare are ignored; a term outside the category's list is an error;
* terms are stored in the order of the category's list, without repeats.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_t2ibias._io import clip, short_repr
from pytest_t2ibias.annotate.base import AnnotationInput, ImageRef, check_annotate_inputs, record_for
from pytest_t2ibias.annotate.captions import UNKNOWN
from pytest_t2ibias.errors import LabelsFileError as LabelsFileError
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import TERM_LISTS, Suite

#: How many missing image ids an error lists.
_SHOW_MISSING = 5


class _Entry(BaseModel):
    """One image of a JSON labels file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, str] = Field(default_factory=dict)
    present: dict[str, list[str]] = Field(default_factory=dict)


@dataclass(frozen=True)
class _Labelled:
    """One image's labels as read, and where they were read (for error messages)."""

    where: str
    labels: dict[str, str]
    present: dict[str, list[str]]
    #: how errors name a field: ``labels.`` / ``present.`` in JSON, the bare column name in CSV
    label_prefix: str = ""
    list_prefix: str = ""

    def field(self, name: str, *, is_list: bool) -> str:
        """``where: field `name```, as an error message starts."""
        return f"{self.where}: field `{self.list_prefix if is_list else self.label_prefix}{_name(name)}`"


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the keys it saw twice (``json`` silently keeps the last)."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    obj.duplicates = [key for key, count in counts.items() if count > 1]
    return obj


def _short(value: object) -> str:
    return short_repr(value, 80)


def _name(value: str) -> str:
    """A field or column name from the file, on one line and bounded."""
    return clip(value, 80)


class PrecomputedLabels:
    """An :class:`~pytest_t2ibias.annotate.base.ImageAnnotator` that looks labels up by image id.

    Example:
        >>> import tempfile
        >>> from pytest_t2ibias.annotate.base import AnnotationInput
        >>> from pytest_t2ibias.suites import load_suite
        >>> from PIL import Image
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "labels.csv"
        >>> _ = path.write_text("image_id,gender,explicit,implied,unexpected,keywords\\nd0,female,doctor,,,\\n")
        >>> annotator = PrecomputedLabels.from_file(path, load_suite("t2i-biasbench"))
        >>> annotator.scorer_id.startswith("labels:labels.csv#")
        True
        >>> item = AnnotationInput("d0", Image.new("RGB", (8, 8)), "A doctor performing surgery in a hospital.")
        >>> record = annotator.annotate([item], "doctor")[0]
        >>> record.labels, record.present["explicit"]
        ({'gender': 'female'}, ['doctor'])
        >>> tmp.cleanup()
    """

    #: measuring needs no image: the pipeline looks the plan's image ids up (:meth:`lookup`) instead of
    #: generating the images (see :class:`~pytest_t2ibias.annotate.base.LabelLookup`)
    needs_images = False

    def __init__(
        self,
        suite: Suite,
        entries: Mapping[str, _Labelled],
        source: str,
        scorer_id: str,
        *,
        strict: bool = True,
        problems: Sequence[str] = (),
    ) -> None:
        self.suite = suite
        self.source = source
        self.scorer_id = scorer_id
        self._entries = dict(entries)
        #: False: missing, unplanned and invalid labels are counted warnings (:attr:`problems`), not errors
        self.strict = strict
        #: one line per kind of problem found (only when not ``strict``)
        self.problems: list[str] = list(problems)

    @property
    def image_ids(self) -> list[str]:
        """The image ids the file labels, in file order."""
        return list(self._entries)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], suite: Suite, *, name: str = "mapping", strict: bool = True
    ) -> PrecomputedLabels:
        """Labels given in Python (a fixture's return value), in the JSON file's shape; the scorer id
        hashes their canonical JSON, so other labels make the baselines stale."""
        try:
            text = json.dumps(data, sort_keys=True)
        except (TypeError, ValueError) as err:
            raise LabelsFileError(f"{name}: labels must be JSON-like (image id -> labels/present): {err}") from None
        source = f"labels {name}"
        parsed = _parse_json(text, source)
        parsed, problems = _checked(parsed, _SuiteCheck(suite, source), strict)
        scorer_id = f"labels:{name}#{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        return cls(suite, parsed, source, scorer_id, strict=strict, problems=problems)

    @classmethod
    def from_file(cls, path: Path, suite: Suite, *, strict: bool = True) -> PrecomputedLabels:
        """Read and validate a ``.csv`` or ``.json`` labels file against ``suite``.

        Raises:
            LabelsFileError: the file is missing, not UTF-8, not valid CSV/JSON, or names an attribute,
                group, term list or term the suite does not declare, or an image id twice.
        """
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise LabelsFileError(f"{source}: no such labels file")
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise LabelsFileError(f"{source}: a labels file must end in .csv or .json, got {path.suffix!r}")
        try:
            content = path.read_bytes()
        except OSError as err:
            raise LabelsFileError(f"{source}: cannot read labels file: {clip(str(err))}") from None
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = content[: err.start].count(b"\n") + 1
            raise LabelsFileError(
                f"{source}: line {line}: not UTF-8 text: byte {content[err.start : err.start + 1]!r} "
                f"at offset {err.start}"
            ) from None
        checker = _SuiteCheck(suite, source)
        parsed = _parse_csv(text, source, checker) if suffix == ".csv" else _parse_json(text, source)
        parsed, problems = _checked(parsed, checker, strict)
        scorer_id = f"labels:{path.name}#{hashlib.sha256(content).hexdigest()[:12]}"
        return cls(suite, parsed, source, scorer_id, strict=strict, problems=problems)

    def lookup(self, refs: Sequence[ImageRef], category: str) -> list[ImageRecord]:
        """The records of the planned images ``refs`` of ``category``, from the labels alone (no image).

        Raises:
            LabelsFileError: (``strict``) an image has no labels; else the unlabelled images are left out
                and counted in :attr:`problems`.
        """
        missing = [ref.image_id for ref in refs if ref.image_id not in self._entries]
        if missing:
            line = (
                f"{self.source}: no labels for {len(missing)} of {len(refs)} planned images of category "
                f"{category!r}; first missing image ids: {missing[:_SHOW_MISSING]}"
            )
            if self.strict:
                raise LabelsFileError(line)
            self.problems.append(line)
        return [self._record(ref, category) for ref in refs if ref.image_id in self._entries]

    def check_planned(self, planned_ids: Sequence[str]) -> None:
        """Image ids of the labels that belong to no planned image (a typo, another suite or seed).

        Raises:
            LabelsFileError: (``strict``) there is one; else it is counted in :attr:`problems`.
        """
        planned = set(planned_ids)
        extra = [image_id for image_id in self._entries if image_id not in planned]
        if not extra:
            return
        line = (
            f"{self.source}: {len(extra)} labelled image ids belong to no planned image of suite "
            f"{self.suite.name!r}; first: {[_short(e) for e in extra[:_SHOW_MISSING]]}"
        )
        if self.strict:
            raise LabelsFileError(line)
        if line not in self.problems:
            self.problems.append(line)

    def annotate(self, items: Sequence[AnnotationInput], category: str) -> list[ImageRecord]:
        """One record per item, with the file's labels for ``item.image_id`` (seed, prompt, path kept).

        Raises:
            LabelsFileError: an item has no labels in the file, lacks the category's attribute or one of
                its term lists, or names a term outside the category's list.
        """
        check_annotate_inputs(items, category, list(self.suite.categories))
        missing = [item.image_id for item in items if item.image_id not in self._entries]
        if missing:
            raise LabelsFileError(
                f"{self.source}: no labels for {len(missing)} of {len(items)} images of category {category!r}; "
                f"first missing image ids: {missing[:_SHOW_MISSING]}"
            )
        return [self._record(item, category) for item in items]

    def _record(self, item: AnnotationInput | ImageRef, category: str) -> ImageRecord:
        spec = self.suite.categories[category]
        entry = self._entries[item.image_id]
        if spec.attribute is not None and spec.attribute not in entry.labels:
            at = entry.field(spec.attribute, is_list=False)
            raise LabelsFileError(
                f"{self.source}: {at}: missing; category {category!r} needs a label for attribute "
                f"{spec.attribute!r} (a group or {UNKNOWN!r})"
            )
        annotated = spec.annotated_attributes()
        labels = {name: entry.labels[name] for name in annotated if name in entry.labels}
        declared = spec.list_names()
        present: dict[str, list[str]] = {}
        for list_name in declared:
            at = entry.field(list_name, is_list=True)
            if list_name not in entry.present:
                raise LabelsFileError(
                    f"{self.source}: {at}: missing; category {category!r} declares this term list "
                    "(give an empty list or cell when no term is present)"
                )
            terms = spec.term_list(list_name)
            found = set(entry.present[list_name])
            outside = sorted(found - set(terms))
            if outside:
                raise LabelsFileError(
                    f"{self.source}: {at}: {_short(outside[0])} is not a term of category {category!r}'s {list_name!r} "
                    f"list; valid: {terms}"
                )
            present[list_name] = [t for t in terms if t in found]
        for list_name, given in entry.present.items():
            if list_name not in declared and given:
                raise LabelsFileError(
                    f"{self.source}: {entry.field(list_name, is_list=True)}: {_short(given[0])} is not a term of "
                    f"category {category!r}, which declares no {list_name!r} list"
                )
        return record_for(item, category, labels, present)


def _checked(
    parsed: dict[str, _Labelled], checker: _SuiteCheck, strict: bool
) -> tuple[dict[str, _Labelled], list[str]]:
    """The entries that match the suite; strict: the first that does not raises, else they are dropped
    and counted in one line (naming the first)."""
    kept: dict[str, _Labelled] = {}
    bad: list[str] = []
    for image_id, entry in parsed.items():
        try:
            checker.check(entry)
        except LabelsFileError as err:
            if strict:
                raise
            bad.append(str(err))
            continue
        kept[image_id] = entry
    problems = [f"{len(bad)} labelled images dropped (values outside the suite); first: {bad[0]}"] if bad else []
    return kept, problems


class _SuiteCheck:
    """Load-time checks of one image's labels against everything the suite declares."""

    def __init__(self, suite: Suite, source: str) -> None:
        self.suite = suite
        self.source = source
        #: every term list name of the suite -> the union of its terms over the categories
        self.lists: dict[str, set[str]] = {name: set() for name in TERM_LISTS}
        for cat in suite.categories.values():
            for name in TERM_LISTS:
                self.lists[name].update(getattr(cat.terms, name))
            for name, terms in cat.context.items():
                self.lists.setdefault(name, set()).update(terms)

    def valid_labels(self, attribute: str) -> list[str]:
        """The attribute's groups, then ``unknown`` and its ``unmatched`` label (``other``)."""
        spec = self.suite.attributes[attribute]
        return [*spec.groups, *dict.fromkeys([UNKNOWN, spec.unmatched])]

    def check(self, entry: _Labelled) -> None:
        suite = self.suite.name
        for attribute, label in entry.labels.items():
            at = entry.field(attribute, is_list=False)
            if attribute not in self.suite.attributes:
                raise LabelsFileError(
                    f"{self.source}: {at}: not an attribute of suite {suite!r}; "
                    f"attributes: {sorted(self.suite.attributes)}"
                )
            valid = self.valid_labels(attribute)
            if label not in valid:
                raise LabelsFileError(
                    f"{self.source}: {at}: {_short(label)} is not a group of attribute {attribute!r}; valid: {valid}"
                )
        for list_name, terms in entry.present.items():
            at = entry.field(list_name, is_list=True)
            if list_name not in self.lists:
                raise LabelsFileError(
                    f"{self.source}: {at}: not a term list of suite {suite!r}; lists: {sorted(self.lists)}"
                )
            for term in terms:
                if term not in self.lists[list_name]:
                    raise LabelsFileError(
                        f"{self.source}: {at}: {_short(term)} is not a term of any {list_name!r} list of suite "
                        f"{suite!r}; valid: {sorted(self.lists[list_name])}"
                    )


def _parse_json(text: str, source: str) -> dict[str, _Labelled]:
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as err:
        raise LabelsFileError(f"{source}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise LabelsFileError(f"{source}: not a labels file: JSON nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        raise LabelsFileError(f"{source}: not valid JSON: {clip(str(err))}") from None
    if not isinstance(data, _JsonObject):
        raise LabelsFileError(
            f"{source}: a JSON labels file must be an object keyed by image id, got {type(data).__name__}"
        )
    if data.duplicates:
        raise LabelsFileError(f"{source}: field `image_id`: duplicate image id {_short(data.duplicates[0])}")
    entries: dict[str, _Labelled] = {}
    for image_id, raw in data.items():
        where = f"image {_short(image_id)}"
        if not image_id:
            raise LabelsFileError(f"{source}: field `image_id`: empty image id")
        if not isinstance(raw, _JsonObject):
            raise LabelsFileError(
                f"{source}: {where}: must be an object with `labels` and `present`, got {_short(raw)}"
            )
        for obj, prefix in [(raw, "")] + [(v, f"{k}.") for k, v in raw.items() if isinstance(v, _JsonObject)]:
            if obj.duplicates:
                raise LabelsFileError(f"{source}: {where}: field `{_name(prefix + obj.duplicates[0])}`: given twice")
        try:
            entry = _Entry.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            field = _name(".".join(str(part) for part in first["loc"]))
            raise LabelsFileError(
                f"{source}: {where}: field `{field}`: {clip(first['msg'])} (got {_short(first.get('input'))})"
            ) from None
        present = {k: list(v) for k, v in entry.present.items()}
        entries[image_id] = _Labelled(where, dict(entry.labels), present, "labels.", "present.")
    return entries


def _parse_csv(text: str, source: str, checker: _SuiteCheck) -> dict[str, _Labelled]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise LabelsFileError(f"{source}: empty CSV file; the header must start with `image_id`") from None
    except csv.Error as err:
        raise LabelsFileError(f"{source}: line 1: not valid CSV: {clip(str(err))}") from None
    if not header or header[0] != "image_id":
        raise LabelsFileError(
            f"{source}: line 1: field `image_id`: the header must start with it, got {_short(header[:1])}"
        )
    columns = header[1:]
    dupes = [c for i, c in enumerate(columns) if c in columns[:i]]
    if dupes:
        raise LabelsFileError(f"{source}: line 1: field `{_name(dupes[0])}`: column given twice")
    empty = [i + 2 for i, c in enumerate(columns) if not c]
    if empty:
        raise LabelsFileError(f"{source}: line 1: column {empty[0]} has no name")
    attributes = set(checker.suite.attributes)
    for column in columns:
        if column not in attributes and column not in checker.lists:
            raise LabelsFileError(
                f"{source}: line 1: field `{_name(column)}`: not an attribute or term list of suite "
                f"{checker.suite.name!r}; attributes: {sorted(attributes)}, lists: {sorted(checker.lists)}"
            )
    entries: dict[str, _Labelled] = {}
    lines: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise LabelsFileError(f"{source}: line {reader.line_num}: not valid CSV: {clip(str(err))}") from None
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise LabelsFileError(f"{source}: line {line}: {len(row)} cells, the header has {len(header)}")
        image_id = row[0].strip()
        if not image_id:
            raise LabelsFileError(f"{source}: line {line}: field `image_id`: empty image id")
        where = f"line {line} (image {_short(image_id)})"
        if image_id in lines:
            raise LabelsFileError(
                f"{source}: {where}: field `image_id`: duplicate image id {_short(image_id)} "
                f"(first on line {lines[image_id]})"
            )
        lines[image_id] = line
        labels: dict[str, str] = {}
        present: dict[str, list[str]] = {}
        for column, raw in zip(columns, row[1:], strict=True):
            cell = raw.strip()
            if column not in attributes:
                terms = [t.strip() for t in cell.split("|")] if cell else []
                present[column] = list(dict.fromkeys(t for t in terms if t))
            elif cell:
                labels[column] = cell
        entries[image_id] = _Labelled(where, labels, present)
    return entries
