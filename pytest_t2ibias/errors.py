"""The package's errors: one base class, so callers catch ``T2IBiasError`` instead of bare ``ValueError``.

Every error a user can cause with bad input (a suite, a policy, a baseline, a caption or labels file, a
model that does not load, a setting) is a :class:`T2IBiasError` whose message is one line naming the file
(or option), the field and the value. The base subclasses ``ValueError`` so code written against the
older per-module classes (all ``ValueError`` subclasses) keeps working.

Every exception and warning class of the package is defined here (``tests/test_layout.py`` checks it; a
few private ones that never leave their module are listed there). The modules that raise them import
them from here, so ``pytest_t2ibias.generate.cache.LockTimeoutError`` is this module's class too.

>>> issubclass(LockTimeoutError, T2IBiasError) and issubclass(StaleScorerCardError, ScorerCardError)
True
>>> issubclass(CacheLocationError, SettingsError), issubclass(T2IBiasError, ValueError)
(True, True)
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


class CacheLocationError(SettingsError):
    """``--cache`` names a folder that cannot be made or written: a usage error (exit status 2)."""


class ScorerCardError(T2IBiasError):
    """A scorer card that cannot be read or does not fit; the message names the file and field."""


class StaleScorerCardError(ScorerCardError):
    """A scorer card recorded for another scorer (or scorer settings) than the run's."""


class CacheStorageError(T2IBiasError):
    """A remote cache could not be opened, read or written (the message names it, credentials masked)."""


class GeneratedImageError(T2IBiasError):
    """A generator returned something that is not a usable image; nothing of its batch was cached."""


class LockTimeoutError(T2IBiasError):
    """The run waited ``max_lock_wait`` seconds in total for batches other processes hold; names the lock
    and its holder."""


class ShardError(T2IBiasError):
    """A rank of a sharded run failed; every rank raises it (the collective still completed, so no rank
    waits forever). ``local`` is this rank's own error, or ``None`` when only other ranks failed."""

    def __init__(self, message: str, local: str | None) -> None:
        super().__init__(message)
        self.local = local


class BaselineWriteError(T2IBiasError):
    """A baseline that cannot be written (read-only folder, file-size limit, a folder in the way); the
    message names the file and the reason, and the old baseline is left as it was."""


class MetricUnavailable(Exception):
    """A metric that cannot be computed on this data; ``str(err)`` is the reason.

    Raised by a metric function (built in or registered with :func:`~pytest_t2ibias.metrics.registry.metric`).
    Not a user error (so not a :class:`T2IBiasError`): the engine turns it into ``null`` plus the reason.
    """


# -- warnings ------------------------------------------------------------------------------------------


class T2IBiasWarning(UserWarning):
    """A check that is not a failure yet: an interval straddling a bound, an inconclusive regression."""


class CacheCorruptionWarning(UserWarning):
    """A cache entry was unreadable or inconsistent; it is regenerated."""


class LockWaitWarning(UserWarning):
    """Another process held a block's lock past ``ImageCache.lock_timeout``; the block is generated here too."""


class RecordsCacheWarning(UserWarning):
    """A cached category could not be read; it is scored again."""


__all__ = [
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
]
