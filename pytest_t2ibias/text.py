"""Caption text normalisation shared by the annotators and the lexical metrics."""

from __future__ import annotations

import re

_PAPER_SEPARATORS = re.compile(r"[/\-;]")
_WHITESPACE = re.compile(r"\s+")


def paper_clean(text: str) -> str:
    """The paper's cleaning: lower-case, ``/ - ;`` to spaces, whitespace collapsed.

    Example:
        >>> paper_clean("White / Caucasian;  light-skinned")
        'white caucasian light skinned'
    """
    return _WHITESPACE.sub(" ", _PAPER_SEPARATORS.sub(" ", text.lower())).strip()
