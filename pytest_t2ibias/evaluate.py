"""Deprecated: moved to :mod:`pytest_t2ibias.pipeline` (this module re-exports it for one release)."""

from pytest_t2ibias.pipeline import Evaluation, evaluate_suite, image_id

__all__ = ["Evaluation", "evaluate_suite", "image_id"]
