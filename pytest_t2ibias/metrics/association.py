"""Contextual association score (CAS): how often stereotype terms win over diverse ones."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: The paper's smoothing constant in the denominator.
CAS_EPS = 1e-8


def contextual_association(stereotype: ArrayLike, diverse: ArrayLike, eps: float = CAS_EPS) -> float:
    r"""Share of stereotype mentions among stereotype-or-diverse mentions.

    ``stereotype[i]`` / ``diverse[i]``: whether caption i contains any stereotype / diverse term. A
    caption can count in both; one with neither is ignored.

    .. math::
        \mathrm{CAS} = \frac{S}{S + D + \epsilon}, \quad S = \sum_i s_i,\; D = \sum_i d_i

    Example:
        >>> round(contextual_association([True, True, False], [False, True, False]), 4)
        0.6667
    """
    s = np.asarray(stereotype, dtype=bool)
    d = np.asarray(diverse, dtype=bool)
    if s.shape != d.shape or s.ndim != 1:
        raise ValueError(f"`stereotype` and `diverse` must be 1-d of equal length, got {s.shape} and {d.shape}")
    n_s, n_d = int(s.sum()), int(d.sum())
    return n_s / (n_s + n_d + eps)
