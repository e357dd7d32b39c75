"""Caption annotator: caption text -> :class:`ImageRecord`, by the suite's lexicons.

This is the paper's labelling route (a VLM captions each image, words decide the labels) and serves
any image-to-text model later.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
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
from pytest_t2ibias.suites.schema import Attribute, Category, Suite
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


#: A paper pattern that is one literal word between ``\b``s (``\bwoman\b``): its matches are exactly the
#: maximal runs of word characters equal to the word, so it is counted off the caption's words.
_WORD_PATTERN = re.compile(r"\\b([A-Za-z0-9_]+)\\b")
#: A paper pattern with no special character (``female``): its matches are the literal's non-overlapping
#: occurrences, which ``str.count`` counts the same way.
_LITERAL_PATTERN = re.compile(r"[A-Za-z0-9_ ]+")
#: The runs of word characters of a caption (``\w`` as the patterns read it).
_WORDS = re.compile(r"\w+")


class _PaperLabeller:
    """:func:`_label_clean` of one attribute with its terms and patterns resolved once: a replay labels
    every caption by every annotated attribute, and re-deriving the stripped terms and running each
    pattern per caption was most of its time. Same results, term for term and match for match: a pattern
    is counted by a word lookup or ``str.count`` only where that counts exactly what ``findall`` finds
    (:data:`_WORD_PATTERN`, :data:`_LITERAL_PATTERN`); any other pattern runs as before."""

    def __init__(self, attribute: Attribute) -> None:
        self.attribute = attribute
        # first_match: (group, the terms as paper_contains looks for them), in group order
        self.first: list[tuple[str, tuple[str, ...]]] = [
            (group, tuple(term.rstrip("*") for term in spec.terms)) for group, spec in attribute.groups.items()
        ]
        # most_hits: per group the words, literals and other patterns (bound findall) it counts
        self.voters: list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[Callable[[str], list[str]], ...]]] = []
        for group, spec in attribute.groups.items():
            words, literals, finders = [], [], []
            for pattern in spec.patterns or [rf"\b{term}\b" for term in spec.terms]:
                word = _WORD_PATTERN.fullmatch(pattern)
                if word is not None:
                    words.append(word.group(1))
                elif _LITERAL_PATTERN.fullmatch(pattern):
                    literals.append(pattern)
                else:
                    finders.append(re.compile(pattern).findall)
            self.voters.append((group, tuple(words), tuple(literals), tuple(finders)))

    def __call__(self, clean: str) -> str:
        attribute = self.attribute
        if attribute.rule == "first_match":
            contains = clean.__contains__
            for group, terms in self.first:
                if any(map(contains, terms)):
                    return group
            return attribute.unmatched
        counts = Counter(_WORDS.findall(clean)).get
        count = clean.count
        hits = {
            group: sum([counts(w, 0) for w in words])
            + sum([count(lit) for lit in literals])
            + sum([len(findall(clean)) for findall in finders])
            for group, words, literals, finders in self.voters
        }
        return _vote(hits, tie=attribute.tie, unmatched=attribute.unmatched)


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
        self._labellers: dict[str, _PaperLabeller] = {}

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
        spec = self._category(category)
        attributes = spec.annotated_attributes()
        if self.mode == "paper":
            clean = paper_clean(caption)
            labels = {name: self._labeller(name)(clean) for name in attributes}
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

    def _category(self, category: str) -> Category:
        if category not in self.suite.categories:
            raise ValueError(
                f"`category` must be one of {list(self.suite.categories)} of suite {self.suite.name!r}, "
                f"got {category!r}"
            )
        return self.suite.categories[category]

    def _stripped(self, category: str, list_name: str) -> list[tuple[str, str]]:
        """The list's terms with what :func:`paper_contains` looks for (stems lose their ``*``), once."""
        key = (category, list_name)
        cached = self._terms.get(key)
        if cached is None:
            terms = self.suite.categories[category].term_list(list_name)
            cached = self._terms[key] = [(t, t.rstrip("*")) for t in terms]
        return cached

    def annotate_many(self, rows: Sequence[tuple[str, str]], category: str) -> list[ImageRecord]:
        """``(image_id, caption)`` pairs of one category, order kept (the lexical Vendi uses it).

        Each distinct caption is labelled once (paper mode: each distinct cleaned caption), the attributes'
        terms and patterns resolved once per annotator: a replay of 100,000 rows spent half its time here.
        The records equal :meth:`annotate`'s, one by one.
        """
        if not all(type(image_id) is str and type(caption) is str for image_id, caption in rows):
            # anything but plain strings goes the validated way (it is validated, or refused, as before)
            return [self.annotate(caption, category, image_id) for image_id, caption in rows]
        spec = self._category(category)
        attributes = spec.annotated_attributes()
        lists = spec.list_names()
        # caption key -> the first record with it: its labels and terms serve the repeats (validation gives
        # each record its own copies), and no second copy of every caption's results is kept
        found: dict[str, ImageRecord] = {}
        records = []
        for image_id, caption in rows:
            key = paper_clean(caption) if self.mode == "paper" else caption
            first = found.get(key)
            if first is None:
                labels, present = self._label(key, category, attributes, lists)
            else:
                labels, present = first.labels, first.present
            record = ImageRecord(image_id=image_id, category=category, caption=caption, labels=labels, present=present)
            if first is None:
                found[key] = record
            records.append(record)
        return records

    def _label(
        self, key: str, category: str, attributes: list[str], lists: list[str]
    ) -> tuple[dict[str, str], dict[str, list[str]]]:
        """Labels and terms found of one caption (paper mode: of its cleaned text), as :meth:`annotate`."""
        if self.mode == "paper":
            labels = {name: self._labeller(name)(key) for name in attributes}
            present = {n: [t for t, s in self._stripped(category, n) if s in key] for n in lists}
            return labels, present
        spec = self.suite.categories[category]
        labels = {name: label_strict(key, self.suite.attributes[name]) for name in attributes}
        tokens = tokenize(key)
        present = {n: [t for t in spec.term_list(n) if strict_contains(tokens, t)] for n in lists}
        return labels, present

    def _labeller(self, attribute: str) -> _PaperLabeller:
        labeller = self._labellers.get(attribute)
        if labeller is None:
            labeller = self._labellers[attribute] = _PaperLabeller(self.suite.attributes[attribute])
        return labeller
