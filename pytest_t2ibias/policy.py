"""Deprecated: moved to :mod:`pytest_t2ibias.judge.policy` (this module re-exports it for one release)."""

from pytest_t2ibias.judge.policy import (
    MetricRule,
    Policy,
    PolicyError,
    Regression,
    find_policy,
    load_policy,
    parse_policy,
)

__all__ = ["MetricRule", "Policy", "PolicyError", "Regression", "find_policy", "load_policy", "parse_policy"]
