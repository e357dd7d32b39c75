"""The package's errors: one base class, so callers catch ``T2IBiasError`` instead of bare ``ValueError``.

Every error a user can cause with bad input (a suite, a policy, a baseline, a caption or labels file, a
model that does not load, a setting) is a :class:`T2IBiasError` whose message is one line naming the file
(or option), the field and the value. The base subclasses ``ValueError`` so code written against the
older per-module classes (all ``ValueError`` subclasses) keeps working.

Old import paths (``pytest_t2ibias.suites.SuiteError``, ``pytest_t2ibias.policy.PolicyError``, ...) still
give these classes.
"""

from __future__ import annotations


class T2IBiasError(ValueError):
    """Base of every user-facing error of pytest-t2ibias.

    Its message is masked as it is made (:func:`~pytest_t2ibias.masking.mask_credentials`): it names a model,
    suite, card or cache location the user gave, which may be a URL with a password or a signed query, and
    it is printed, logged and written to reports from many places.
    """

    def __init__(self, *args: object) -> None:
        from pytest_t2ibias.masking import mask_credentials  # here: the cheap import of a rare path

        super().__init__(*(mask_credentials(arg) if isinstance(arg, str) else arg for arg in args))


class SuiteError(T2IBiasError):
    """A suite file that cannot be read or does not match the schema."""


class PolicyError(T2IBiasError):
    """A policy file that cannot be read or does not match the schema or the suite."""


class CorruptBaselineError(T2IBiasError):
    """A baseline file that is not valid JSON, does not match the schema, or cannot be trusted; names the file."""


class CaptionFileError(T2IBiasError):
    """A caption file that cannot be read; the message names the file."""


class LabelsFileError(T2IBiasError):
    """A precomputed-labels file that cannot be read or does not match the suite."""


class SyntheticConfigError(T2IBiasError):
    """A synthetic-model configuration that does not match the schema or the suite."""


class MarkError(T2IBiasError):
    """An image whose synthetic mark cannot be read."""


class ModelLoadError(T2IBiasError, RuntimeError):
    """A model or scorer checkpoint that cannot be loaded (offline, missing files, wrong kind of model).

    Also a ``RuntimeError``, as it was before the package had one base error.
    """


class SettingsError(T2IBiasError):
    """A plugin or command-line setting with a value the package cannot use."""


__all__ = [
    "CaptionFileError",
    "CorruptBaselineError",
    "LabelsFileError",
    "MarkError",
    "ModelLoadError",
    "PolicyError",
    "SettingsError",
    "SuiteError",
    "SyntheticConfigError",
    "T2IBiasError",
]
