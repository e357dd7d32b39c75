"""A cache of scored categories: the per-image records of one category, shared by processes.

Scoring a category (generate its images, label them) is the expensive part of a bias test. Under
pytest-xdist every worker needs every gated category (the run's correction needs all their p-values),
and several processes may share one image cache; this store lets the first process that scores a
category write its records, and every other one read them instead of scoring again. A lock per category
(``filelock``, an OS lock that dies with its holder) makes the others wait rather than duplicate the work.

The key is a hash of everything that changes the records: the model's fingerprint and generation
settings, the scorer's id, the suite's hash, the category, the mode, the seed and the images per prompt.
Entries are JSON, written atomically, validated on read; a corrupt entry is reported and scored again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_t2ibias._files import read_regular_bytes
from pytest_t2ibias._io import make_cache_folder, write_text_atomic
from pytest_t2ibias.errors import RecordsCacheWarning as RecordsCacheWarning
from pytest_t2ibias.records import ImageRecord

RECORDS_FORMAT = 2


def records_key(**parts: Any) -> str:
    """The hash that names one scored category (``parts``: every input that changes its records)."""
    blob = json.dumps({"format": RECORDS_FORMAT, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class RecordsCache:
    """Scored categories under ``<root>/records/``, safe to share between processes."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "records"

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> list[ImageRecord] | None:
        path = self.path(key)
        try:
            data = json.loads(read_regular_bytes(path).decode("utf-8"))  # a FIFO there: unreadable, no hang
            if not isinstance(data, dict) or data.get("key") != key:
                raise ValueError("the entry does not belong to this key")
            return [ImageRecord.model_validate(r) for r in data["records"]]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warnings.warn(f"t2ibias cache: {path}: {first}; scoring again", RecordsCacheWarning, stacklevel=2)
            return None

    def store(self, key: str, records: list[ImageRecord]) -> None:
        entry = {"key": key, "format": RECORDS_FORMAT, "records": [r.model_dump(mode="json") for r in records]}
        make_cache_folder(self.root.parent)
        write_text_atomic(self.path(key), json.dumps(entry, separators=(",", ":")), durable=False)

    @contextlib.contextmanager
    def lock(self, key: str, max_wait: float | None = None) -> Iterator[None]:
        """Hold the category's lock: one process scores it while the others wait for its records.

        A wait names the lock and its holder on stderr after a few seconds; past ``max_wait`` seconds
        (None: no bound) it raises :class:`~pytest_t2ibias.generate.cache.LockTimeoutError`.
        """
        from filelock import FileLock

        from pytest_t2ibias.generate.cache import acquire_reporting, drop_holder, lock_timeout_error, note_holder

        path = self.root / "locks" / f"{key}.lock"
        make_cache_folder(self.root.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        started = time.monotonic()
        if not acquire_reporting(lock, path, float("inf") if max_wait is None else max_wait, "category lock"):
            assert max_wait is not None
            raise lock_timeout_error("category lock", path, time.monotonic() - started, max_wait)
        try:
            note_holder(path)
            yield
        finally:
            drop_holder(path)
            lock.release()
