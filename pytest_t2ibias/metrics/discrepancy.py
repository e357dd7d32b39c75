"""The field's measures of a distribution against a target: fairness discrepancy, skew, KL, NDKL.

Pure numpy on one distribution (the vectorised count metrics of :mod:`~pytest_t2ibias.metrics.catalog`
compute the same over many samples; ``tests/test_field_metrics.py`` checks them against these and against
the published formulas' code). ``p`` holds a group's share per entry and ``target`` the share it should
have: uniform (``1/k``) or a reference such as a labour statistic.

* **Fairness discrepancy** (Choi et al., "Fair Generative Modeling via Weak Supervision", ICML 2020; the
  measure of CLEAM, ITI-GEN and fair-diffusion papers): the L2 distance :math:`\\lVert p - t \\rVert_2`.
* **Skew** (Geyik et al., "Fairness-Aware Ranking in Search & Recommendation Systems", KDD 2019):
  :math:`\\ln(p_g / t_g)` per group; MaxSkew is the largest (the most over-represented group) and MinSkew the
  smallest (the most under-represented). A group with no image would have :math:`\\ln 0`: it counts as one
  image (:math:`1/n`), the rule of debias-vision-lang's ``compute_skew_metrics`` (Berg et al., 2022), but
  never as more than half its target share, so an undrawn group always shows as under-represented (at
  n < 2/t one image would be more than its target: 5 images over 8 joint groups). Shares between 0 and that
  floor (posterior draws) count as the floor: the skew is bounded below by :math:`\\ln(\\min(1/n, t/2) / t)`.
* **KL to a target**, in nats: :math:`\\sum_g p_g \\ln(p_g / t_g)`. A target share of 0 for a group the model
  drew would make it infinite; such shares are floored at :data:`TARGET_FLOOR` (half of 0.1 %, the precision
  labour statistics are published to: a published 0.0 % is under 0.05 %) and the target renormalised.
* **NDKL** (Geyik et al.): images ranked (most like the prompt first), the KL of the top-i images' shares to
  the target, discounted by :math:`1/\\log_2(i+1)` and normalised by :math:`Z = \\sum_i 1/\\log_2(i+1)`, as
  debias-vision-lang's ``normalized_discounted_KL`` computes it.

>>> import numpy as np
>>> p, even = np.array([0.8, 0.2]), np.array([0.5, 0.5])
>>> round(fairness_discrepancy(p, even), 4)  # sqrt(0.3**2 + 0.3**2)
0.4243
>>> round(max_skew(p, even, n=10), 4), round(min_skew(p, even, n=10), 4)  # ln(0.8/0.5), ln(0.2/0.5)
(0.47, -0.9163)
>>> round(min_skew(np.array([1.0, 0.0]), even, n=10), 4)  # no image of the second group: one image, ln(0.1/0.5)
-1.6094
>>> round(kl_to(p, even), 4)
0.1927
>>> # top 1 and 2 all "a" (KL ln 2 each), top 3 2:1 (0.0566), top 4 even (0); discounts 1, 1/log2 3, 1/2, 1/log2 5
>>> round(ndkl(["a", "a", "b", "b"], ["a", "b"], even), 4)
0.4524
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: A target share below this counts as this in KL (see the module's docstring).
TARGET_FLOOR = 0.0005


def floored(target: ArrayLike) -> NDArray[np.float64]:
    """The target with shares under :data:`TARGET_FLOOR` raised to it, renormalised (rows of a matrix alike)."""
    t = np.maximum(np.asarray(target, dtype=np.float64), TARGET_FLOOR)
    return np.asarray(t / t.sum(axis=-1, keepdims=True), dtype=np.float64)


def fairness_discrepancy(p: ArrayLike, target: ArrayLike) -> float:
    """The L2 distance between the shares and the target (Choi et al., 2020)."""
    return float(np.linalg.norm(np.asarray(p, dtype=np.float64) - np.asarray(target, dtype=np.float64)))


def skews(p: ArrayLike, target: ArrayLike, n: float) -> NDArray[np.float64]:
    """:math:`\\ln(p_g / t_g)` per group, a share under one of ``n`` images (or half the target share, when
    that is less) counted as that floor."""
    t = np.asarray(target, dtype=np.float64)
    share = np.maximum(np.asarray(p, dtype=np.float64), np.minimum(1.0 / n, t / 2))
    return np.asarray(np.log(share) - np.log(t), dtype=np.float64)


def max_skew(p: ArrayLike, target: ArrayLike, n: float) -> float:
    """The most over-represented group's skew (Geyik et al., 2019)."""
    return float(skews(p, target, n).max())


def min_skew(p: ArrayLike, target: ArrayLike, n: float) -> float:
    """The most under-represented group's skew (Geyik et al., 2019)."""
    return float(skews(p, target, n).min())


def kl_to(p: ArrayLike, target: ArrayLike) -> float:
    """KL divergence (nats) of the shares from the target (target shares floored: :func:`floored`)."""
    share, t = np.asarray(p, dtype=np.float64), floored(target)
    terms = np.where(share > 0, share * np.log(np.where(share > 0, share, 1.0) / t), 0.0)
    return float(terms.sum()) + 0.0


def ndkl(ranked: Sequence[str], groups: Sequence[str], target: ArrayLike) -> float:
    """Normalised discounted KL of labels ``ranked`` best first (labels outside ``groups`` left out)."""
    index = {g: j for j, g in enumerate(groups)}
    codes = [index[label] for label in ranked if label in index]
    if not codes:
        raise ValueError("no ranked label is one of the groups")
    counts = np.zeros(len(groups))
    total = z = 0.0
    for i, code in enumerate(codes, start=1):
        counts[code] += 1
        discount = 1.0 / math.log2(i + 1)
        total += kl_to(counts / i, target) * discount
        z += discount
    return total / z
