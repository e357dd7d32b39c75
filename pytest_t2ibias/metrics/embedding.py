"""Embedding metrics: the Vendi Score (Friedman & Dieng 2023) and CLIPScore (Hessel et al. 2021).

Pure numpy over embeddings an image scorer produced; these are the real metrics the paper's lexical
``vendi`` and keyword ``clip_proxy`` stand in for.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Hessel et al.'s rescaling weight.
CLIPSCORE_WEIGHT = 2.5


def _unit_rows(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` must be an (n, d) matrix with n, d > 0, got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` has a zero or non-finite row")
    unit: NDArray[np.float64] = arr / norms
    return unit


def vendi_score(embeddings: ArrayLike) -> float:
    r"""Vendi Score with the cosine kernel: the effective number of distinct images.

    With :math:`K_{ij} = \cos(x_i, x_j)` and :math:`\lambda_i` the eigenvalues of :math:`K / n`:

    .. math::
        \mathrm{VS} = \exp\Big(-\sum_i \lambda_i \log \lambda_i\Big)

    1 when all images are identical, n when they are mutually orthogonal.

    Example:
        >>> round(vendi_score([[1.0, 0.0], [0.0, 1.0]]), 6)
        2.0
        >>> round(vendi_score([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]), 6)
        1.0
    """
    x = _unit_rows(embeddings, "embeddings")
    n = x.shape[0]
    # eigenvalues of K/n = X X^T / n equal the non-zero eigenvalues of X^T X / n; use the smaller Gram
    gram = (x @ x.T) if n <= x.shape[1] else (x.T @ x)
    eigenvalues = np.linalg.eigvalsh(gram / n)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-(eigenvalues * np.log(eigenvalues)).sum()))


def clip_scores(
    image_embeddings: ArrayLike, text_embeddings: ArrayLike, w: float = CLIPSCORE_WEIGHT
) -> NDArray[np.float64]:
    r"""Per-image CLIPScore against its own prompt: row i of images with row i of texts.

    .. math::
        \mathrm{CLIPScore}(c, v) = w \cdot \max(\cos(c, v), 0)

    Example:
        >>> clip_scores([[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 0.0]]).round(4).tolist()
        [1.7678, 0.0]
    """
    images = _unit_rows(image_embeddings, "image_embeddings")
    texts = _unit_rows(text_embeddings, "text_embeddings")
    if images.shape != texts.shape:
        raise ValueError(
            f"`image_embeddings` and `text_embeddings` must have equal shapes, got {images.shape} and {texts.shape}"
        )
    scores: NDArray[np.float64] = w * np.maximum((images * texts).sum(axis=1), 0.0)
    return scores
