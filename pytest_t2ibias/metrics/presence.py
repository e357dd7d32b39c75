"""Element metrics over presence matrices: missing rates, any-term rates, keyword coverage.

``present`` is an (N images, T terms) boolean matrix: ``present[i, j]`` is whether term j of a list
was found for image i.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _check_presence(present: ArrayLike) -> NDArray[np.bool_]:
    arr = np.asarray(present, dtype=bool)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"`present` must be an (images, terms) matrix with both > 0, got shape {arr.shape}")
    return arr


def missing_rate(present: ArrayLike) -> float:
    r"""Mean over images of the fraction of the list's terms that are absent (GMR, IEMR).

    .. math::
        \mathrm{MR} = \frac{1}{N} \sum_i \frac{\#\{j : \neg x_{ij}\}}{T}

    Example:
        >>> missing_rate([[True, False], [False, False]])
        0.75
    """
    return float(1.0 - _check_presence(present).mean(axis=1).mean())


def coverage(present: ArrayLike) -> float:
    r"""Mean over images of the fraction of the list's terms present (the paper's CLIP proxy).

    .. math::
        C = \frac{1}{N} \sum_i \frac{\#\{j : x_{ij}\}}{T}

    Example:
        >>> coverage([[True, False], [False, False]])
        0.25
    """
    return float(_check_presence(present).mean(axis=1).mean())


def any_rate(present: ArrayLike) -> float:
    r"""Share of images with at least one term of the list (CAR, hallucination, context ratios).

    .. math::
        R = \frac{1}{N} \sum_i \mathbb{1}[\exists j: x_{ij}]

    Example:
        >>> any_rate([[True, False], [False, False], [False, True]])
        0.6666666666666666
    """
    return float(_check_presence(present).any(axis=1).mean())


def distinct_present(present: ArrayLike) -> int:
    """Number of distinct terms of the list seen in any image (e.g. cultural-marker coverage).

    Example:
        >>> distinct_present([[True, False, False], [True, False, True]])
        2
    """
    return int(_check_presence(present).any(axis=0).sum())
