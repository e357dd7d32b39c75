"""Caption annotator: caption text -> :class:`ImageRecord`, by the suite's lexicons.

This is the paper's labelling route (a VLM captions each image, words decide the labels) and serves
any image-to-text model later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from pytest_t2ibias.annotate.matching import (
    mask_phrases,
    paper_contains,
    paper_pattern_hits,
    strict_contains,
    strict_count,
    tokenize,
)
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import Attribute, Suite
from pytest_t2ibias.text import paper_clean
from pytest_t2ibias.types import Mode

UNKNOWN = "unknown"


def check_mode(mode: str) -> Mode:
    """Validate a mode name, naming the parameter and the valid values."""
    if mode not in get_args(Mode):
        raise ValueError(f"`mode` must be one of {list(get_args(Mode))}, got {mode!r}")
    return mode  # type: ignore[return-value]


def label_paper(caption: str, attribute: Attribute) -> str:
    """The paper's label: first group whose term occurs, or the most regex hits (tie by ``tie``)."""
    return _label_clean(paper_clean(caption), attribute)


def _label_clean(clean: str, attribute: Attribute) -> str:
    """:func:`label_paper` of a caption already cleaned (a caption is cleaned once for every attribute)."""
    if attribute.rule == "first_match":
        for group, spec in attribute.groups.items():
            if any(paper_contains(clean, term) for term in spec.terms):
                return group
        return attribute.unmatched
    hits = {
        group: paper_pattern_hits(clean, spec.patterns or [rf"\b{term}\b" for term in spec.terms])
        for group, spec in attribute.groups.items()
    }
    return _vote(hits, tie=attribute.tie, unmatched=attribute.unmatched)


def label_strict(caption: str, attribute: Attribute) -> str:
    """Strict label: whole words after masking the ``ignore`` phrases; a tie or no match is unknown."""
    tokens = mask_phrases(tokenize(caption), attribute.ignore)
    if attribute.rule == "first_match":
        for group, spec in attribute.groups.items():
            if any(strict_contains(tokens, term) for term in spec.terms):
                return group
        return UNKNOWN
    hits = {group: sum(strict_count(tokens, t) for t in spec.terms) for group, spec in attribute.groups.items()}
    return _vote(hits, tie=None, unmatched=UNKNOWN)


def _vote(hits: dict[str, int], tie: str | None, unmatched: str) -> str:
    best = max(hits.values(), default=0)
    if best == 0:
        return unmatched
    leaders = [group for group, count in hits.items() if count == best]
    if len(leaders) == 1:
        return leaders[0]
    return tie if tie in leaders else unmatched


class CaptionAnnotator:
    """Label captions with a suite's lexicons.

    Example:
        >>> from pytest_t2ibias.suites import load_suite
        >>> annotator = CaptionAnnotator(load_suite("t2i-biasbench"), mode="strict")
        >>> record = annotator.annotate("Two rats solving a puzzle in a laboratory.", "animal")
        >>> record.labels["species"], record.present["explicit"]
        ('rat', ['puzzle', 'laboratory', 'solving'])
    """

    def __init__(self, suite: Suite, mode: Mode = "strict") -> None:
        self.suite = suite
        self.mode = check_mode(mode)
        self._terms: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def annotate(
        self,
        caption: str,
        category: str,
        image_id: str = "",
        *,
        seed: int | None = None,
        prompt: str | None = None,
        image_path: str | None = None,
    ) -> ImageRecord:
        """One caption of ``category`` -> its record; ``seed``, ``prompt`` and ``image_path`` are kept."""
        if category not in self.suite.categories:
            raise ValueError(
                f"`category` must be one of {list(self.suite.categories)} of suite {self.suite.name!r}, "
                f"got {category!r}"
            )
        spec = self.suite.categories[category]
        attributes = spec.annotated_attributes()
        if self.mode == "paper":
            clean = paper_clean(caption)
            labels = {name: _label_clean(clean, self.suite.attributes[name]) for name in attributes}
            present = {n: [t for t, s in self._stripped(category, n) if s in clean] for n in spec.list_names()}
        else:
            labels = {name: label_strict(caption, self.suite.attributes[name]) for name in attributes}
            tokens = tokenize(caption)
            present = {n: [t for t in spec.term_list(n) if strict_contains(tokens, t)] for n in spec.list_names()}
        return ImageRecord(
            image_id=image_id,
            category=category,
            caption=caption,
            labels=labels,
            present=present,
            seed=seed,
            prompt=prompt,
            image_path=image_path,
        )

    def _stripped(self, category: str, list_name: str) -> list[tuple[str, str]]:
        """The list's terms with what :func:`paper_contains` looks for (stems lose their ``*``), once."""
        key = (category, list_name)
        cached = self._terms.get(key)
        if cached is None:
            terms = self.suite.categories[category].term_list(list_name)
            cached = self._terms[key] = [(t, t.rstrip("*")) for t in terms]
        return cached

    def annotate_many(self, rows: Sequence[tuple[str, str]], category: str) -> list[ImageRecord]:
        """``(image_id, caption)`` pairs of one category, order kept (the lexical Vendi uses it)."""
        return [self.annotate(caption, category, image_id) for image_id, caption in rows]
