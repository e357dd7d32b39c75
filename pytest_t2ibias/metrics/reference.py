"""Group shares against a reference distribution (a real-world share, or parity): pure numpy functions.

``p`` holds one distribution per row over ``groups``; ``reference`` maps each group to its share.

>>> import numpy as np
>>> groups = ("female", "male")
>>> nurse = {"female": 0.88, "male": 0.12}
>>> float(amplification(np.array([[0.95, 0.05]]), groups, nurse)[0])
0.07
>>> float(gap(np.array([[0.95, 0.05]]), groups, nurse, ["female"])[0])
0.07
>>> float(amplification(np.array([[0.12, 0.88]]), groups, nurse)[0])  # the skew reversed: not amplified
-0.76
>>> float(deviation(np.array([[0.12, 0.88]]), groups, nurse)[0])
0.76
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray


def column(p: NDArray[np.float64], groups: Sequence[str], group: str) -> NDArray[np.float64]:
    """The share of ``group`` in each row (0 where the rows' groups do not include it)."""
    return p[:, list(groups).index(group)] if group in groups else np.zeros(len(p))


def amplification(p: NDArray[np.float64], groups: Sequence[str], reference: Mapping[str, float]) -> NDArray[np.float64]:
    r"""How far each row pushes past the reference's skew:
    :math:`\frac12 \sum_g (p_g - r_g)\,\mathrm{sign}(r_g - 1/k)`.

    For two groups it is the reference majority's share minus the reference's (nurses: 0.95 drawn women
    where 0.88 work is +0.07); negative means less skewed than the reference (toward parity or past it).
    A group at exactly 1/k counts for neither side, and a reference at parity has nothing to amplify (0).
    """
    even = 1.0 / len(reference)
    total = np.zeros(len(p))
    for group, share in reference.items():
        total = total + (column(p, groups, group) - share) * np.sign(round(share - even, 12))
    return np.round(total / 2, 12) + 0.0


def gap(
    p: NDArray[np.float64], groups: Sequence[str], reference: Mapping[str, float], side: Sequence[str]
) -> NDArray[np.float64]:
    """Signed gap of the summed share of ``side`` to the reference's share of it."""
    value = sum((column(p, groups, g) for g in side), np.zeros(len(p))) - sum(reference.get(g, 0.0) for g in side)
    return np.round(value, 12) + 0.0


def deviation(p: NDArray[np.float64], groups: Sequence[str], reference: Mapping[str, float]) -> NDArray[np.float64]:
    """Total variation distance to the reference, :math:`\\frac12 \\sum_g |p_g - r_g|` (for two groups: the
    absolute gap)."""
    total = sum((np.abs(column(p, groups, g) - r) for g, r in reference.items()), np.zeros(len(p)))
    return np.round(total / 2, 12) + 0.0
