"""The paper's lexical Vendi proxy: caption diversity by word-set Jaccard."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

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
    return jaccard_from_indicators(word_indicators(texts))


def word_indicators(texts: Sequence[str]) -> sparse.csr_matrix:
    """A sparse (texts x distinct words) 0/1 matrix of the captions' word sets (cleaned as
    :func:`lexical_vendi` does): memory O(words used), not O(texts x vocabulary)."""
    vocabulary: dict[str, int] = {}
    columns: list[int] = []
    starts = [0]
    for text in texts:
        row = sorted({vocabulary.setdefault(w, len(vocabulary)) for w in paper_clean(text).split()})
        columns += row
        starts.append(len(columns))
    shape = (len(texts), max(len(vocabulary), 1))
    data = np.ones(len(columns), dtype=np.float64)
    return sparse.csr_matrix((data, np.array(columns, dtype=np.int64), np.array(starts, dtype=np.int64)), shape=shape)


def jaccard_from_indicators(words: sparse.csr_matrix) -> NDArray[np.float64]:
    """Pairwise Jaccard similarity of the rows of a 0/1 word-indicator matrix (two empty rows: 1)."""
    inter = np.asarray((words @ words.T).toarray(), dtype=np.float64)  # exact: small integer counts
    sizes = np.asarray(words.sum(axis=1), dtype=np.float64).reshape(-1)
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 1.0)
