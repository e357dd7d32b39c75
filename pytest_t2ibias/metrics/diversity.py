"""The paper's lexical Vendi proxy: caption diversity by word-set Jaccard."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias.text import paper_clean

#: The paper scores only the first 50 captions of a category, in file order.
PAPER_VENDI_LIMIT = 50


def lexical_vendi(texts: Sequence[str], limit: int | None = PAPER_VENDI_LIMIT) -> float:
    r"""One minus the mean pairwise Jaccard similarity of the captions' word sets.

    Each caption is cleaned the paper's way (lower case, ``/ - ;`` to spaces) and split on whitespace.

    Not the Vendi Score of Friedman & Dieng (that one needs embeddings); this is the paper's proxy,
    kept under the id ``vendi`` so published numbers reproduce. Only the first ``limit`` texts count.

    .. math::
        V = 1 - \frac{2}{m(m-1)} \sum_{i<j} \frac{|W_i \cap W_j|}{|W_i \cup W_j|}

    Example:
        >>> lexical_vendi(["A red cat", "a red-dog"])
        0.5
    """
    chosen = list(texts if limit is None else texts[:limit])
    if len(chosen) < 2:
        raise ValueError(f"`texts` needs at least 2 texts for a pairwise score, got {len(chosen)}")
    sets = [frozenset(paper_clean(t).split()) for t in chosen]
    sims = [len(a & b) / len(a | b) if (a | b) else 1.0 for a, b in combinations(sets, 2)]
    return float(1.0 - np.mean(sims))


def jaccard_matrix(texts: Sequence[str]) -> NDArray[np.float64]:
    r"""Pairwise Jaccard similarity of the captions' word sets (cleaned as :func:`lexical_vendi` does).

    Two empty word sets count as identical (1), as in :func:`lexical_vendi`.

    Example:
        >>> jaccard_matrix(["A red cat", "a red-dog"]).round(2).tolist()
        [[1.0, 0.5], [0.5, 1.0]]
    """
    sets = [paper_clean(t).split() for t in texts]
    vocabulary: dict[str, int] = {}
    rows = [sorted({vocabulary.setdefault(w, len(vocabulary)) for w in words}) for words in sets]
    x = np.zeros((len(rows), max(len(vocabulary), 1)), dtype=np.float32)
    for i, columns in enumerate(rows):
        x[i, columns] = 1.0
    inter = (x @ x.T).astype(np.float64)  # exact: small integer counts
    sizes = x.sum(axis=1, dtype=np.float64)
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 1.0)
