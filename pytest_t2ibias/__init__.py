"""pytest-t2ibias: bias regression tests for text-to-image models.

The public API is importable from the package itself (``from pytest_t2ibias import assert_policy``): the
assertion helpers, the result types, the errors and warnings, the model and scorer protocols, the metric
decorators and the registries; ``__all__`` lists them, and ``docs/api.md`` says where each is described.

pytest imports this package in every run (the plugin's entry point), so it imports nothing itself: a name
loads its module on first use (a module ``__getattr__``).

>>> import pytest_t2ibias
>>> from pytest_t2ibias import LockTimeoutError, T2IBiasError
>>> issubclass(LockTimeoutError, T2IBiasError) and "assert_policy" in pytest_t2ibias.__all__
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names as _EXPORTS, for type checkers (tests/test_layout.py keeps them equal)
    from pytest_t2ibias.annotate.base import AnnotationInput as AnnotationInput
    from pytest_t2ibias.annotate.base import ImageAnnotator as ImageAnnotator
    from pytest_t2ibias.assertions import assert_aggregates as assert_aggregates
    from pytest_t2ibias.assertions import assert_cbs_below as assert_cbs_below
    from pytest_t2ibias.assertions import assert_cultural_coverage as assert_cultural_coverage
    from pytest_t2ibias.assertions import assert_missing_rate_below as assert_missing_rate_below
    from pytest_t2ibias.assertions import assert_no_regression as assert_no_regression
    from pytest_t2ibias.assertions import assert_parity as assert_parity
    from pytest_t2ibias.assertions import assert_policy as assert_policy
    from pytest_t2ibias.assertions import cultural_coverage as cultural_coverage
    from pytest_t2ibias.errors import BaselineWriteError as BaselineWriteError
    from pytest_t2ibias.errors import CacheCorruptionWarning as CacheCorruptionWarning
    from pytest_t2ibias.errors import CacheLocationError as CacheLocationError
    from pytest_t2ibias.errors import CacheStorageError as CacheStorageError
    from pytest_t2ibias.errors import CaptionFileError as CaptionFileError
    from pytest_t2ibias.errors import CorruptBaselineError as CorruptBaselineError
    from pytest_t2ibias.errors import GeneratedImageError as GeneratedImageError
    from pytest_t2ibias.errors import LabelsFileError as LabelsFileError
    from pytest_t2ibias.errors import LockTimeoutError as LockTimeoutError
    from pytest_t2ibias.errors import LockWaitWarning as LockWaitWarning
    from pytest_t2ibias.errors import MarkError as MarkError
    from pytest_t2ibias.errors import MetricUnavailable as MetricUnavailable
    from pytest_t2ibias.errors import ModelLoadError as ModelLoadError
    from pytest_t2ibias.errors import PolicyError as PolicyError
    from pytest_t2ibias.errors import RecordsCacheWarning as RecordsCacheWarning
    from pytest_t2ibias.errors import ScorerCardError as ScorerCardError
    from pytest_t2ibias.errors import SettingsError as SettingsError
    from pytest_t2ibias.errors import ShardError as ShardError
    from pytest_t2ibias.errors import StaleScorerCardError as StaleScorerCardError
    from pytest_t2ibias.errors import SuiteError as SuiteError
    from pytest_t2ibias.errors import SyntheticConfigError as SyntheticConfigError
    from pytest_t2ibias.errors import T2IBiasError as T2IBiasError
    from pytest_t2ibias.errors import T2IBiasWarning as T2IBiasWarning
    from pytest_t2ibias.generate.base import ImageGenerator as ImageGenerator
    from pytest_t2ibias.metrics.aggregate import Aggregates as Aggregates
    from pytest_t2ibias.metrics.intervals import MetricEstimate as MetricEstimate
    from pytest_t2ibias.metrics.registry import METRICS as METRICS
    from pytest_t2ibias.metrics.registry import MetricDef as MetricDef
    from pytest_t2ibias.metrics.registry import count_metric as count_metric
    from pytest_t2ibias.metrics.registry import metric as metric
    from pytest_t2ibias.metrics.result import CategoryResult as CategoryResult
    from pytest_t2ibias.records import ImageRecord as ImageRecord
    from pytest_t2ibias.registry import BuildContext as BuildContext
    from pytest_t2ibias.registry import generators as generators
    from pytest_t2ibias.registry import scorers as scorers
    from pytest_t2ibias.results import RunResult as RunResult
    from pytest_t2ibias.suites.loader import load_suite as load_suite
    from pytest_t2ibias.suites.schema import Suite as Suite

_ERRORS = (
    "BaselineWriteError",
    "CacheCorruptionWarning",
    "CacheLocationError",
    "CacheStorageError",
    "CaptionFileError",
    "CorruptBaselineError",
    "GeneratedImageError",
    "LabelsFileError",
    "LockTimeoutError",
    "LockWaitWarning",
    "MarkError",
    "MetricUnavailable",
    "ModelLoadError",
    "PolicyError",
    "RecordsCacheWarning",
    "ScorerCardError",
    "SettingsError",
    "ShardError",
    "StaleScorerCardError",
    "SuiteError",
    "SyntheticConfigError",
    "T2IBiasError",
    "T2IBiasWarning",
)

#: Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    # assertion helpers
    "assert_aggregates": "pytest_t2ibias.assertions",
    "assert_cbs_below": "pytest_t2ibias.assertions",
    "assert_cultural_coverage": "pytest_t2ibias.assertions",
    "assert_missing_rate_below": "pytest_t2ibias.assertions",
    "assert_no_regression": "pytest_t2ibias.assertions",
    "assert_parity": "pytest_t2ibias.assertions",
    "assert_policy": "pytest_t2ibias.assertions",
    "cultural_coverage": "pytest_t2ibias.assertions",
    # result types
    "Aggregates": "pytest_t2ibias.metrics.aggregate",
    "CategoryResult": "pytest_t2ibias.metrics.result",
    "ImageRecord": "pytest_t2ibias.records",
    "MetricEstimate": "pytest_t2ibias.metrics.intervals",
    "RunResult": "pytest_t2ibias.results",
    # protocols of a model and a scorer, and what a scorer is given
    "AnnotationInput": "pytest_t2ibias.annotate.base",
    "ImageAnnotator": "pytest_t2ibias.annotate.base",
    "ImageGenerator": "pytest_t2ibias.generate.base",
    # metric decorators and the registries
    "METRICS": "pytest_t2ibias.metrics.registry",
    "MetricDef": "pytest_t2ibias.metrics.registry",
    "count_metric": "pytest_t2ibias.metrics.registry",
    "metric": "pytest_t2ibias.metrics.registry",
    "BuildContext": "pytest_t2ibias.registry",
    "generators": "pytest_t2ibias.registry",
    "scorers": "pytest_t2ibias.registry",
    # suites
    "Suite": "pytest_t2ibias.suites.schema",
    "load_suite": "pytest_t2ibias.suites.loader",
    # errors and warnings
    **dict.fromkeys(_ERRORS, "pytest_t2ibias.errors"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then kept as a module attribute)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
