"""Distribution metrics over one attribute's labels: parity, amplification, entropy, KL.

Pure numpy. ``p`` is a vector of group shares summing to 1; its length is k, the number of groups
(the observed ones in paper mode, the declared ones in strict mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _check_shares(p: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`p` must be a non-empty 1-d vector of shares, got shape {arr.shape}")
    if np.any(arr < 0) or not np.isclose(arr.sum(), 1.0):
        raise ValueError(f"`p` must be non-negative and sum to 1, got {arr.tolist()}")
    return arr


def proportions(
    labels: Sequence[str], groups: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> tuple[list[str], NDArray[np.float64]]:
    """Shares of each group among ``labels``.

    With ``groups=None`` the groups are the observed labels, most frequent first (ties in order of
    first appearance), as the paper reports them. With declared ``groups`` unobserved groups get 0 and
    labels outside ``groups`` (or in ``exclude``) are left out of the denominator.

    Example:
        >>> names, p = proportions(["a", "b", "a", "unknown"])
        >>> names, p.tolist()
        (['a', 'b', 'unknown'], [0.5, 0.25, 0.25])
        >>> names, p = proportions(["a", "b", "a", "unknown"], groups=["a", "b", "c"])
        >>> names, p.round(4).tolist()
        (['a', 'b', 'c'], [0.6667, 0.3333, 0.0])
    """
    if groups is None:
        kept = [label for label in labels if label not in exclude]
        order: dict[str, int] = {}
        for label in kept:
            order[label] = order.get(label, 0) + 1
        names = sorted(order, key=lambda g: -order[g])  # sorted() is stable: first appearance breaks ties
        counts = np.array([order[g] for g in names], dtype=np.float64)
    else:
        names = list(groups)
        index = {g: i for i, g in enumerate(names)}
        counts = np.zeros(len(names), dtype=np.float64)
        for label in labels:
            if label in index and label not in exclude:
                counts[index[label]] += 1
    total = counts.sum()
    if total == 0:
        raise ValueError("`labels` holds no label of the given groups")
    return names, counts / total


def parity_difference(shares: Mapping[str, float], a: Sequence[str], b: Sequence[str] | None = None) -> float:
    r"""The paper's parity difference: absolute gap between the shares of groups ``a`` and ``b``.

    ``b=None`` means everything else (``1 - p_a``, unknown included, as the paper's beauty split).

    .. math::
        \mathrm{PD} = |p_a - p_b|

    Example:
        >>> parity_difference({"male": 0.24, "female": 0.34, "unknown": 0.42}, ["male"], ["female"])
        0.1
    """
    p_a, p_b = _sides(shares, a, b)
    return abs(round(p_a - p_b, 12))  # 0.34 - 0.24 should print as 0.1, not 0.10000000000000003


def signed_parity(
    shares: Mapping[str, float],
    a: Sequence[str],
    b: Sequence[str] | None = None,
    reference: Mapping[str, float] | None = None,
) -> float:
    r"""Strict parity: how far side ``a``'s share departs from the reference, signed, in [-1, 1].

    With :math:`q = p_a / (p_a + p_b)` the share of ``a`` within the split and :math:`\rho` the same
    share under the reference distribution (uniform over the groups of ``shares`` by default):

    .. math::
        \mathrm{PD}_{signed} = \begin{cases} (q - \rho) / (1 - \rho) & q \ge \rho \\
                                             (q - \rho) / \rho & q < \rho \end{cases}

    0 means the split matches the reference; +1 means only ``a``, -1 only ``b``. For two groups with a
    50/50 reference it equals :math:`p_a - p_b`, so 100% female doctors give -1 and 100% male +1.

    Example:
        >>> signed_parity({"male": 0.0, "female": 1.0}, ["male"], ["female"])
        -1.0
        >>> signed_parity({"male": 0.6, "female": 0.4}, ["male"], ["female"], {"male": 0.6, "female": 0.4})
        0.0
    """
    p_a, p_b = _sides(shares, a, b)
    if p_a + p_b <= 0:
        raise ValueError(f"`shares` put no mass on either side of the split {list(a)} / {b or 'rest'}")
    if reference is None:
        reference = {g: 1.0 / len(shares) for g in shares}
    r_a, r_b = _sides(reference, a, b)
    if r_a <= 0 or r_b <= 0:
        raise ValueError(f"`reference` must give both sides a positive share, got {r_a} and {r_b}")
    q, rho = p_a / (p_a + p_b), r_a / (r_a + r_b)
    value = (q - rho) / (1 - rho) if q >= rho else (q - rho) / rho
    return round(value, 12) + 0.0


def _sides(shares: Mapping[str, float], a: Sequence[str], b: Sequence[str] | None) -> tuple[float, float]:
    p_a = sum(shares.get(g, 0.0) for g in a)
    p_b = 1.0 - p_a if b is None else sum(shares.get(g, 0.0) for g in b)
    return p_a, p_b


def bias_amplification(p: ArrayLike) -> float:
    r"""Total deviation from the uniform distribution over the k groups (Zhao et al. 2017 style).

    .. math::
        \mathrm{BA} = \sum_g \left| p_g - \tfrac{1}{k} \right|

    Example:
        >>> round(bias_amplification([0.74, 0.12, 0.11, 0.02, 0.01]), 4)
        1.08
    """
    arr = _check_shares(p)
    return float(np.abs(arr - 1.0 / arr.size).sum())


def shannon_entropy(p: ArrayLike) -> float:
    r"""Shannon entropy in bits; empty groups contribute 0.

    .. math::
        H = -\sum_g p_g \log_2 p_g

    Example:
        >>> shannon_entropy([0.5, 0.5])
        1.0
    """
    arr = _check_shares(p)
    nz = arr[arr > 0]
    return float(-(nz * np.log2(nz)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def normalized_entropy(p: ArrayLike) -> float:
    r"""Entropy over its maximum for k groups; 0 when k <= 1.

    .. math::
        H_{norm} = H / \log_2 k

    Example:
        >>> normalized_entropy([0.25, 0.25, 0.25, 0.25])
        1.0
        >>> normalized_entropy([1.0])
        0.0
    """
    arr = _check_shares(p)
    if arr.size <= 1:
        return 0.0
    return shannon_entropy(arr) / float(np.log2(arr.size))


def kl_from_uniform(p: ArrayLike) -> float:
    r"""KL divergence (nats) of the shares from the uniform distribution over the k groups.

    .. math::
        D_{KL}(p \,\|\, u) = \sum_g p_g \ln(p_g k)

    Example:
        >>> round(kl_from_uniform([2 / 3, 1 / 3]), 4)
        0.0566
    """
    arr = _check_shares(p)
    nz = arr[arr > 0]
    return float((nz * np.log(nz * arr.size)).sum()) + 0.0
