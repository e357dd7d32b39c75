"""The prompt-suite schema: categories, attributes, term lists, and which metrics apply.

A suite is data (YAML). Everything a metric needs that is specific to a benchmark lives here, so a new
metric is one function in :mod:`pytest_t2ibias.metrics` plus its id in a category's ``metrics`` line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_t2ibias._io import short_repr

#: Names of the term lists a category may declare; the ``requires`` of a metric refers to these.
TERM_LISTS = (
    "explicit",
    "implied",
    "unexpected",
    "keywords",
    "cas_stereotype",
    "cas_diverse",
    "cultural_markers",
)


#: The most images per prompt a suite (or ``--images-per-prompt``) may ask for: 100,000 images of one
#: prompt is far beyond any bias test, and a typo like ``1e12`` must fail at load, not in the generator.
MAX_IMAGES_PER_PROMPT = 100_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError(f"a prompt must not be blank, got {short_repr(value)}")
    return value


#: A prompt: any text with at least one non-space character.
Prompt = Annotated[str, AfterValidator(_not_blank)]
#: A reference share: a finite number >= 0 (the shares of a category sum to 1).
Share = Annotated[float, Field(ge=0, allow_inf_nan=False)]


#: Joins the parts of a joint attribute and of its groups: ``gender_x_ethnicity``, ``female_x_black``.
JOINT = "_x_"
#: Joins a metric and the attribute it is measured on: ``fd@ethnicity`` (no suffix: the attribute under test).
VIEW = "@"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Group(_Strict):
    """One declared group of an attribute (e.g. ``female`` of ``gender``)."""

    terms: list[str] = Field(min_length=1, description="Lexicon terms, matched in captions.")
    phrases: list[str] = Field(min_length=1, description="Natural-language phrases for image scorers.")
    patterns: list[str] | None = Field(
        default=None, description="Paper-mode regexes replacing the terms (the paper's gender cues)."
    )

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or []:
            try:
                re.compile(pattern)
            except (re.error, OverflowError) as err:
                raise ValueError(f"invalid regular expression {short_repr(pattern)}: {err}") from None
            except RecursionError:
                raise ValueError(f"invalid regular expression {short_repr(pattern)}: nested too deeply") from None
        return value


class Attribute(_Strict):
    """An attribute under test and the rule that turns caption text into one of its groups."""

    rule: Literal["first_match", "most_hits"] = "first_match"
    tie: str | None = Field(default=None, description="Paper mode: the group a most_hits tie goes to.")
    unmatched: str = Field(default="unknown", description="Paper mode: the label when no group matches.")
    groups: dict[str, Group] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list, description="Strict mode: phrases masked first.")

    @model_validator(mode="after")
    def _tie_is_a_group(self) -> Attribute:
        if self.tie is not None and self.tie not in self.groups:
            raise ValueError(f"tie: {self.tie!r} is not a group; groups are {sorted(self.groups)}")
        if self.unmatched in self.groups:
            raise ValueError(f"unmatched: {self.unmatched!r} must not be a declared group")
        return self


class Parity(_Strict):
    """The two sides of the parity split: ``a`` against ``b`` (a list of groups, or ``rest``)."""

    a: list[str] = Field(min_length=1)
    b: list[str] | Literal["rest"]


class Reference(_Strict):
    """A reference distribution of one or more attributes, with where it comes from.

    Written as ``{source: ..., year: 2022, gender: {female: 0.879}}``: every key besides ``source``,
    ``year``, ``unit``, ``note`` and ``noisy`` names an attribute, mapped to the shares of its groups. A share
    list that leaves out exactly one declared group gives it the rest (``male`` gets 1 - 0.879); otherwise
    the shares must sum to 1. ``unit: percent`` reads the numbers as percentages.
    """

    source: str = Field(min_length=1, description="Where the numbers come from (or `parity`).")
    year: int | None = None
    unit: Literal["fraction", "percent"] = "fraction"
    note: str = ""
    noisy: bool = Field(default=False, description="The numbers move from year to year (a small sample).")
    shares: dict[str, dict[str, Share]] = Field(default_factory=dict, description="Attribute -> group -> share.")

    @model_validator(mode="before")
    @classmethod
    def _attributes_at_top_level(cls, data: object) -> object:
        if not isinstance(data, dict) or "shares" in data:
            return data
        fields = {"source", "year", "unit", "note", "noisy"}
        return {
            **{k: v for k, v in data.items() if k in fields},
            "shares": {k: v for k, v in data.items() if k not in fields},
        }

    def of(self, attribute: str, groups: list[str]) -> dict[str, float]:
        """The full distribution of ``attribute`` over ``groups`` (fractions; the one left-out group gets
        the rest). The suite checked at load that this is possible."""
        scale = 100.0 if self.unit == "percent" else 1.0
        given = {g: share / scale for g, share in self.shares[attribute].items()}
        missing = [g for g in groups if g not in given]
        if len(missing) == 1:
            given[missing[0]] = max(0.0, 1.0 - sum(given.values()))
        return {g: given.get(g, 0.0) for g in groups}


class TermListSet(_Strict):
    explicit: list[str] = Field(default_factory=list)
    implied: list[str] = Field(default_factory=list)
    unexpected: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    cas_stereotype: list[str] = Field(default_factory=list)
    cas_diverse: list[str] = Field(default_factory=list)
    cultural_markers: list[str] = Field(default_factory=list)


class Category(_Strict):
    """One prompt category: prompts, the attribute under test, its term lists and metrics."""

    prompts: list[Prompt] = Field(min_length=1)
    image_names: list[str] = Field(
        default_factory=list, description="Substrings of an image file name that put it in this category."
    )
    people: bool = False
    attribute: str | None = None
    also_annotate: list[str] = Field(default_factory=list)
    parity: Parity | None = None
    reference: dict[str, Share] | None = Field(
        default=None, description="Strict mode: reference distribution for signed parity (uniform if absent)."
    )
    shares: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Extra metric id -> the group (or groups, summed) whose share it is."
    )
    intersect: list[str] | None = Field(
        default=None,
        min_length=2,
        description="Annotated attributes measured jointly: a derived attribute named `a_x_b`, groups `g_x_h`.",
    )
    terms: TermListSet = Field(default_factory=TermListSet)
    context: dict[str, list[str]] = Field(default_factory=dict, description="Lists giving <name>_ratio.")
    metrics: list[str] = Field(min_length=1)
    groups: list[str] = Field(
        default_factory=list, description="Groups the category belongs to (`occupations/healthcare`)."
    )
    references: dict[str, Reference] = Field(default_factory=dict, description="Named reference distributions.")
    compare_to: str | None = Field(default=None, description="The reference the `*_reference` metrics measure against.")
    note: str = ""

    @field_validator("groups")
    @classmethod
    def _group_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", name):
                raise ValueError(
                    f"a group name is words joined by `/` (like `occupations/healthcare`), got {short_repr(name)}"
                )
        return value

    @field_validator("context")
    @classmethod
    def _context_lists_not_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = [name for name, terms in value.items() if not terms]
        if empty:
            raise ValueError(f"context lists must not be empty: {empty}")
        return value

    @field_validator("image_names")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    def term_list(self, name: str) -> list[str]:
        """A term list by name: one of :data:`TERM_LISTS` or a context list."""
        if name in TERM_LISTS:
            return list(getattr(self.terms, name))
        return list(self.context[name])

    def annotated_attributes(self) -> list[str]:
        """The attribute under test first, then the ``also_annotate`` ones: what every annotator labels."""
        return ([self.attribute] if self.attribute else []) + list(self.also_annotate)

    def joint(self) -> str | None:
        """The name of the derived attribute ``intersect`` declares (``gender_x_ethnicity``), or None."""
        return JOINT.join(self.intersect) if self.intersect else None

    def measured_attributes(self) -> list[str]:
        """Every attribute a metric can be measured on (``<metric>@<attribute>``): the annotated ones and
        the joint one."""
        joint = self.joint()
        return self.annotated_attributes() + ([joint] if joint else [])

    def share_groups(self, metric_id: str) -> list[str]:
        """The groups whose summed share the ``shares`` entry ``metric_id`` is."""
        groups = self.shares[metric_id]
        return [groups] if isinstance(groups, str) else list(groups)

    def view(self, attribute: str) -> Category:
        """This category measuring ``attribute`` (an annotated or the joint one) as its attribute under
        test: its metrics are the ``<metric>@<attribute>`` ones (unqualified), parity and the strict-mode
        reference dropped (they are the attribute under test's), ``compare_to`` kept where that reference
        gives shares of ``attribute``. Not validated (a joint attribute is no suite attribute)."""
        if attribute == self.attribute:
            return self
        suffix = VIEW + attribute
        reference = self.references.get(self.compare_to or "")
        return self.model_copy(
            update={
                "attribute": attribute,
                "also_annotate": [],
                "intersect": None,
                "parity": None,
                "reference": None,
                "compare_to": self.compare_to if reference is not None and attribute in reference.shares else None,
                "metrics": [m.removesuffix(suffix) for m in self.metrics if m.endswith(suffix)],
            }
        )

    def list_names(self) -> list[str]:
        """Every non-empty term list and context list of the category, in a fixed order."""
        names = [n for n in TERM_LISTS if getattr(self.terms, n)]
        return names + sorted(self.context)


#: Category fields added after suites were first hashed, with their unused value.
_NEW_CATEGORY_FIELDS: dict[str, object] = {
    "groups": [],
    "references": {},
    "compare_to": None,
    "note": "",
    "intersect": None,
}


#: The checks of a category's ``metrics`` line (``check(category_name, category)`` raises ValueError), in
#: the order registered. The metric layer, which knows the metrics, registers its check when imported
#: (:mod:`pytest_t2ibias.metrics.engine`): the suite layer imports nothing from it.
_METRIC_CHECKS: list[Callable[[str, Category], None]] = []


def register_metric_check(check: Callable[[str, Category], None]) -> None:
    """Have every suite validated from now on check each category's ``metrics`` line with ``check``."""
    if check not in _METRIC_CHECKS:
        _METRIC_CHECKS.append(check)


class Suite(_Strict):
    """A prompt suite: attributes shared by categories, and the categories themselves."""

    name: str
    version: int = 1
    description: str = ""
    seed: int = 0
    images_per_prompt: int = Field(default=100, ge=1, le=MAX_IMAGES_PER_PROMPT)
    attributes: dict[str, Attribute] = Field(default_factory=dict)
    categories: dict[str, Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_references(self) -> Suite:
        for cname, cat in self.categories.items():
            where = f"categories.{cname}"
            for field, attr in [("attribute", cat.attribute)] + [("also_annotate", a) for a in cat.also_annotate]:
                if attr is not None and attr not in self.attributes:
                    raise ValueError(
                        f"{where}.{field}: unknown attribute {attr!r}; declared: {sorted(self.attributes)}"
                    )
            groups = set(self.attributes[cat.attribute].groups) if cat.attribute else set()
            named: list[tuple[str, str]] = []
            if cat.parity is not None:
                named += [("parity.a", g) for g in cat.parity.a]
                if cat.parity.b != "rest":
                    named += [("parity.b", g) for g in cat.parity.b]
            named += [("reference", g) for g in (cat.reference or {})]
            self._check_views(where, cat)
            for key in cat.shares:  # each share over the groups of the attribute it is measured on
                on = [m.partition(VIEW)[2] for m in cat.metrics if m.partition(VIEW)[0] == key and VIEW in m]
                if not on and key not in cat.metrics:  # not measured yet: the groups of some measured attribute
                    measured = [self.attribute_named(cname, a) for a in cat.measured_attributes()]
                    if any(set(cat.share_groups(key)) <= set(a.groups) for a in measured):
                        continue
                if not on or key in cat.metrics:
                    named += [(f"shares.{key}", g) for g in cat.share_groups(key)]
                for attribute in on:
                    declared = set(self.attribute_named(cname, attribute).groups)
                    for group in cat.share_groups(key):
                        if group not in declared:
                            raise ValueError(
                                f"{where}.shares.{key}: {group!r} is not a group of attribute {attribute!r} "
                                f"(`{key}{VIEW}{attribute}`); groups: {sorted(declared)}"
                            )
            for field, group in named:
                if group not in groups:
                    raise ValueError(
                        f"{where}.{field}: {group!r} is not a group of attribute {cat.attribute!r}; "
                        f"groups: {sorted(groups)}"
                    )
            if cat.reference is not None and abs(sum(cat.reference.values()) - 1.0) > 1e-6:
                raise ValueError(f"{where}.reference: shares must sum to 1, got {sum(cat.reference.values())}")
            self._check_references(where, cat)
            for check in _METRIC_CHECKS:
                check(cname, cat)
                for attribute in {m.partition(VIEW)[2] for m in cat.metrics if VIEW in m}:
                    try:
                        check(cname, cat.view(attribute))
                    except ValueError as err:
                        raise ValueError(
                            f"{err} (measured on attribute {attribute!r}: `...{VIEW}{attribute}`)"
                        ) from None
        return self

    def _check_views(self, where: str, cat: Category) -> None:
        """``intersect`` names annotated attributes; a ``<metric>@<attribute>`` names a measured one."""
        if cat.intersect is not None:
            annotated = cat.annotated_attributes()
            for part in cat.intersect:
                if part not in annotated:
                    raise ValueError(
                        f"{where}.intersect: {part!r} is not annotated in this category (its `attribute` or "
                        f"`also_annotate`); annotated: {annotated}"
                    )
            if len(set(cat.intersect)) != len(cat.intersect):
                raise ValueError(f"{where}.intersect: an attribute is named twice: {cat.intersect}")
        for metric_id in cat.metrics:
            if VIEW in metric_id:
                attribute = metric_id.partition(VIEW)[2]
                if attribute not in cat.measured_attributes():
                    raise ValueError(
                        f"{where}.metrics: {metric_id!r} measures attribute {attribute!r}, which this category "
                        f"does not annotate; measured: {cat.measured_attributes()}"
                    )

    def attribute_named(self, category: str, name: str) -> Attribute:
        """An attribute a category measures: a suite attribute, or its joint (``intersect``) one."""
        cat = self.categories[category]
        if name == cat.joint():
            assert cat.intersect is not None
            return joint_attribute([(part, self.attributes[part]) for part in cat.intersect])
        return self.attributes[name]

    def _check_references(self, where: str, cat: Category) -> None:
        for rname, ref in cat.references.items():
            for aname, given in ref.shares.items():
                field = f"{where}.references.{rname}.{aname}"
                if aname not in self.attributes:
                    raise ValueError(f"{field}: unknown attribute {aname!r}; declared: {sorted(self.attributes)}")
                groups = list(self.attributes[aname].groups)
                unknown = [g for g in given if g not in groups]
                if unknown:
                    raise ValueError(f"{field}: {unknown[0]!r} is not a group of {aname!r}; groups: {sorted(groups)}")
                total = sum(given.values()) / (100.0 if ref.unit == "percent" else 1.0)
                left_out = len(groups) - len(given)
                if total > 1 + 1e-6 or (left_out != 1 and abs(total - 1) > 1e-6):
                    raise ValueError(
                        f"{field}: shares must sum to 1 (or leave out exactly one group, which gets the rest), "
                        f"got {round(total, 6)} over {sorted(given)}"
                    )
        if cat.compare_to is not None:
            if cat.compare_to not in cat.references:
                raise ValueError(
                    f"{where}.compare_to: no reference named {cat.compare_to!r}; references: {sorted(cat.references)}"
                )
            if cat.attribute is None or cat.attribute not in cat.references[cat.compare_to].shares:
                raise ValueError(
                    f"{where}.compare_to: reference {cat.compare_to!r} gives no shares of the attribute under "
                    f"test {cat.attribute!r}"
                )

    def groups(self) -> dict[str, list[str]]:
        """Every category group (and each prefix of one: `occupations` for `occupations/healthcare`) with its
        categories, in suite order."""
        out: dict[str, list[str]] = {}
        for cname, cat in self.categories.items():
            for group in cat.groups:
                parts = group.split("/")
                for depth in range(1, len(parts) + 1):
                    members = out.setdefault("/".join(parts[:depth]), [])
                    if cname not in members:
                        members.append(cname)
        return out

    def reference_of(self, category: str, name: str | None = None) -> dict[str, float] | None:
        """The reference shares of the attribute under test (``compare_to`` unless ``name`` is given), or
        ``None`` when the category has none."""
        cat = self.categories[category]
        name = name or cat.compare_to
        if name is None or cat.attribute is None or name not in cat.references:
            return None
        ref = cat.references[name]
        if cat.attribute not in ref.shares:
            return None
        return ref.of(cat.attribute, list(self.attributes[cat.attribute].groups))

    def attribute_of(self, category: str) -> Attribute | None:
        """The attribute under test of a category (None: it has none)."""
        cat = self.categories[category]
        return self.attributes[cat.attribute] if cat.attribute else None

    def fingerprint(self) -> str:
        """A hash of the suite's content: a baseline recorded on another suite is stale."""
        data = self.model_dump(mode="json")
        for cat in data["categories"].values():
            for key, empty in _NEW_CATEGORY_FIELDS.items():  # unused, they leave older suites' hashes alone
                if cat.get(key) == empty:
                    del cat[key]
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def category_for_image(self, image_name: str) -> str | None:
        """The category whose ``image_names`` occurs in the (case-folded) file name; first wins."""
        lowered = image_name.lower()
        for cname, cat in self.categories.items():
            if any(fragment in lowered for fragment in cat.image_names):
                return cname
        return None


def joint_attribute(parts: list[tuple[str, Attribute]]) -> Attribute:
    """The attribute whose groups are every combination of the parts' groups (``female_x_black``): an
    image has one when it has a declared group of every part, else ``unknown``. Built, not validated: it is
    measured, never annotated (its groups' terms are their names)."""
    names = [""]
    for _, attribute in parts:
        names = [f"{prefix}{JOINT if prefix else ''}{group}" for prefix in names for group in attribute.groups]
    groups = {name: Group.model_construct(terms=[name], phrases=[name], patterns=None) for name in names}
    return Attribute.model_construct(rule="first_match", tie=None, unmatched="unknown", groups=groups, ignore=[])


def joint_labels(parts: list[tuple[Attribute, list[str] | tuple[str, ...]]]) -> tuple[str, ...]:
    """Each image's joint label: its parts' groups joined (``female_x_black``), or ``unknown`` when any part
    is not a declared group of its attribute."""
    out = []
    for labels in zip(*(labels for _, labels in parts), strict=True):
        known = all(label in attribute.groups for (attribute, _), label in zip(parts, labels, strict=True))
        out.append(JOINT.join(labels) if known else "unknown")
    return tuple(out)
