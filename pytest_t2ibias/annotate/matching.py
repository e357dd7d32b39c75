"""Term matching on caption text, the paper's way and the strict way.

Paper mode cleans the caption and tests ``term in caption`` (substring): "laboratory" contains "rat".
Strict mode tokenises into words and matches whole words, letting the last word of a term take a
simple plural ("bees", "flies", "leaves", "mice"); a term ending in ``*`` is a word prefix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from pytest_t2ibias.text import paper_clean

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "person": "people",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "louse": "lice",
}

#: Placeholder for masked words: never equal to a term word.
_MASKED = "\x00"


def paper_contains(clean_text: str, term: str) -> bool:
    """Paper-mode presence: plain substring test on the cleaned caption (stems lose their ``*``)."""
    return term.rstrip("*") in clean_text


def paper_pattern_hits(clean_text: str, patterns: Iterable[str]) -> int:
    """Every match of every pattern, summed (the paper's gender vote)."""
    return sum(len(_compiled(p).findall(clean_text)) for p in patterns)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def tokenize(text: str) -> list[str]:
    """Lower-cased words; a possessive ``'s`` is dropped ("women's" -> "women")."""
    words = _WORD.findall(paper_clean(text).replace("\u2019", "'"))
    return [w[:-2] if w.endswith("'s") else w for w in words]


@functools.lru_cache(maxsize=4096)
def word_forms(word: str) -> frozenset[str]:
    """The forms a term's last word matches in strict mode: itself and its simple plurals."""
    forms = {word, word + "s", word + "es"}
    if len(word) > 2 and word.endswith("y") and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    if word.endswith("f"):
        forms.add(word[:-1] + "ves")
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    if word in _IRREGULAR_PLURALS:
        forms.add(_IRREGULAR_PLURALS[word])
    return frozenset(forms)


@functools.lru_cache(maxsize=4096)
def _term_words(term: str) -> tuple[str, ...]:
    if term.endswith("*"):
        return (*tokenize(term[:-1]), "*")
    return tuple(tokenize(term))


def _word_match(token: str, word: str, last: bool, stem: bool) -> bool:
    if last and stem:
        return token.startswith(word)
    if last:
        return token in word_forms(word)
    return token == word


def _spans(tokens: Sequence[str], term: str) -> list[tuple[int, int]]:
    words = _term_words(term)
    stem = bool(words) and words[-1] == "*"
    if stem:
        words = words[:-1]
    if not words:
        return []
    n = len(words)
    found = []
    for start in range(len(tokens) - n + 1):
        if all(_word_match(tokens[start + i], words[i], i == n - 1, stem) for i in range(n)):
            found.append((start, start + n))
    return found


def strict_count(tokens: Sequence[str], term: str) -> int:
    """Whole-word occurrences of ``term`` in ``tokens``."""
    return len(_spans(tokens, term))


def strict_contains(tokens: Sequence[str], term: str) -> bool:
    """Strict-mode presence: the term occurs as whole words."""
    return bool(_spans(tokens, term))


def mask_phrases(tokens: Sequence[str], phrases: Iterable[str]) -> list[str]:
    """Replace every occurrence of the phrases by placeholders ("white coat" is not an ethnicity)."""
    masked = list(tokens)
    for phrase in phrases:
        for start, end in _spans(masked, phrase):
            masked[start:end] = [_MASKED] * (end - start)
    return masked
