"""The family of a run's regression checks and its one multiple-comparison correction.

Every gated regression check of a run is a hypothesis test; failing a build when any of a dozen tests
at alpha = 1% rejects would fail far more often than 1% of the builds. So the p-values of every fail-level check
of the run are adjusted together with the policy's ``correction`` (Holm: family-wise error rate), and
those of the warn-level checks with its ``warn_correction`` (Benjamini-Hochberg: false discovery rate).
:func:`build_family` is the one routine that does it, for the whole run (the plugin, up front) and for a
single test that is outside the run's family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_t2ibias.judge.policy import DEFAULT_ALPHA, Policy
from pytest_t2ibias.judge.stats import benjamini_hochberg, holm

if TYPE_CHECKING:
    from pytest_t2ibias.judge.compare import Comparison
    from pytest_t2ibias.judge.policy import MetricRule


@dataclass(frozen=True, kw_only=True)
class RegressionFamily:
    """One test's share of the family: its comparisons, their adjusted p-values, and the level."""

    comparisons: dict[str, Comparison] = field(default_factory=dict)
    adjusted: dict[str, float] = field(default_factory=dict)
    alpha: float = DEFAULT_ALPHA


def correct(p_values: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values by ``method``: ``holm``, ``bh`` (Benjamini-Hochberg) or ``none``."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return list(p_values)
    raise ValueError(f"`method` must be 'holm', 'bh' or 'none', got {method!r}")


def build_family(
    comparisons: Mapping[str, Mapping[str, Comparison]],
    rules: Mapping[str, Mapping[str, MetricRule]],
    policy: Policy | None,
) -> dict[str, RegressionFamily]:
    """Adjust every comparison of every test (keyed by test id) together, by severity.

    ``rules[test][metric].severity`` puts each comparison in the fail-level or the warn-level family.
    """
    policy = policy or Policy()
    adjusted: dict[str, dict[str, float]] = {test: {} for test in comparisons}
    for severity, method in (("fail", policy.correction), ("warn", policy.warn_correction)):
        keys = [(t, m) for t, comps in comparisons.items() for m in comps if rules[t][m].severity == severity]
        values = correct([comparisons[t][m].p_value for t, m in keys], method)
        for (test, metric_id), value in zip(keys, values, strict=True):
            adjusted[test][metric_id] = value
    return {
        test: RegressionFamily(comparisons=dict(comps), adjusted=adjusted[test], alpha=policy.alpha)
        for test, comps in comparisons.items()
    }
