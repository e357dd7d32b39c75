"""Deprecated: moved to :mod:`pytest_t2ibias.judge.stats` (this module re-exports it for one release)."""

from pytest_t2ibias.judge.stats import (
    Interval,
    benjamini_hochberg,
    bootstrap_intervals,
    holm,
    images_for_power,
    mcnemar_exact,
    paired_bootstrap,
    paired_bootstrap_draws,
    se_p_value,
    unpaired_se,
    unpaired_z,
    wilson_interval,
)

__all__ = [
    "Interval",
    "benjamini_hochberg",
    "bootstrap_intervals",
    "holm",
    "images_for_power",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_bootstrap_draws",
    "se_p_value",
    "unpaired_se",
    "unpaired_z",
    "wilson_interval",
]
