"""The images-needed advice (``Comparison.images_needed``) takes the spread of the change under the
alternative, not under no change, for paired permutation tests as for McNemar.

A share over the labelled images only (``male_share`` or parity with ``unknown`` labels) is no plain
mean over the pairs, so it gets the paired permutation test, whose spread ``se`` is the swap spread
sqrt(sum d_i^2) / n. About the true change the measured change spreads by sqrt(sum (d_i - delta)^2) / n
= sqrt(se^2 - delta^2 / n), McNemar's Wald spread: the advice used se for both and erred high.
"""

from __future__ import annotations

import math

from pytest_t2ibias.judge.compare import Comparison

LEVEL = 0.01 / 23  # the shipped policy's alpha over its fail-level family


def _comparison(method: str, delta: float, psi: float, n: int = 100) -> Comparison:
    extra = {"discordant": psi} if method == "mcnemar" else {}
    return Comparison(
        metric="male_share", delta=delta, p_value=0.01, method=method, n_pairs=n, se=math.sqrt(psi / n),
        one_sided=False, **extra,
    )  # fmt: skip


def test_a_permutation_test_advises_as_mcnemar_with_the_same_discordance() -> None:
    # doctor 50 % -> 65 % male, 20 % re-drawn: psi = 0.8 x 0.15 + 0.2 x 0.5 = 0.22
    mcnemar = _comparison("mcnemar", 0.15, 0.22).images_needed(LEVEL, allowed=0.1)
    swapped = _comparison("paired permutation", 0.15, 0.22).images_needed(LEVEL, allowed=0.1)
    assert mcnemar is not None and swapped is not None
    assert swapped == mcnemar
    # the null spread for both would advise more
    unpaired = _comparison("permutation", 0.15, 0.22).images_needed(LEVEL, allowed=0.1)
    assert unpaired is not None and unpaired > swapped


def test_the_advice_at_the_true_change_is_near_the_simulated_images() -> None:
    """At the true change (+15 points, 20 % re-drawn, no unknowns) the check fails 90 % of simulated runs
    at about 200 images (72 % at 150, 90 % at 200, 95 % at 250; 60 runs each): within +-30 %."""
    advised = _comparison("paired permutation", 0.15, 0.22).images_needed(LEVEL, allowed=0.1)
    assert advised is not None and 140 <= advised <= 260


def test_the_spread_under_the_alternative_is_at_least_half_the_null_spread() -> None:
    # a change as large as the null spread allows (every changed pair one way) keeps a spread floor
    one_way = _comparison("paired permutation", 0.3, 0.09).images_needed(LEVEL, allowed=0.1)
    null = _comparison("permutation", 0.3, 0.09).images_needed(LEVEL, allowed=0.1)
    assert one_way is not None and null is not None
    assert 0 < one_way <= null
