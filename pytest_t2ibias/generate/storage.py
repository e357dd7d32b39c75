"""Where a cache keeps its files: a local folder, or a folder of any fsspec filesystem (``s3://``,
``gs://``, ``az://``, ``file://``, ``memory://``) that runners without a shared disk can share.

A remote store holds the same layout as a local cache (``<xx>/<key>.png`` and ``.json``). Each write goes
to a temporary key under ``<root>/.tmp/`` and is then moved to its final key, so a reader never sees a
half-written entry: on a local or POSIX filesystem the move is a rename; on an object store (S3, GCS) an
object becomes visible only once its upload completes, and the move is a server-side copy of the finished
temporary object (then its deletion), so a crash leaves at most a stray temporary object, never a partial
entry. Object stores offer no rename and no lock: two runners may both make an entry (identical bytes,
last write wins), which costs time, not correctness.

Credentials never appear in what this module says: every URL shown is passed through
:func:`~pytest_t2ibias.masking.mask_credentials`.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from pytest_t2ibias._io import clip
from pytest_t2ibias.errors import CacheStorageError as CacheStorageError
from pytest_t2ibias.masking import mask_credentials


def is_url(location: str | Path) -> bool:
    """Whether a cache location is an fsspec URL (``scheme://...``) rather than a local folder.

    >>> is_url("s3://bucket/cache"), is_url("memory://c"), is_url(".t2ibias_cache"), is_url("C:/cache")
    (True, True, False, False)
    """
    text = str(location)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()


def local_copy_folder(url: str) -> Path:
    """The default read-through copy of a remote cache: ``$XDG_CACHE_HOME/t2ibias/remote/<hash of the URL
    without its credentials>`` (``~/.cache`` without XDG), so the same bucket reached with other
    credentials shares one copy."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "t2ibias" / "remote" / hashlib.sha256(mask_credentials(url).encode()).hexdigest()[:16]


class RemoteStore:
    """A folder of an fsspec filesystem: read a file, write one atomically (temporary key, then move).

    ``storage_options`` go to fsspec (credentials, endpoint); without them fsspec uses the usual
    environment (``AWS_*`` variables, ``gcloud`` credentials, ...).
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.shown = mask_credentials(url)
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError:
            raise CacheStorageError(
                f"cache {self.shown}: a URL cache needs fsspec (pip install 'pytest-t2ibias[remote]', plus "
                "s3fs / gcsfs for s3:// / gs://)"
            ) from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError, OSError) as err:
            raise CacheStorageError(f"cache {self.shown}: cannot open: {self._reason(err)}") from None
        self.root = str(root).rstrip("/")

    def _reason(self, err: BaseException) -> str:
        return clip(mask_credentials(f"{type(err).__name__}: {err}"), 300)

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def url(self, name: str) -> str:
        """Where ``name`` lives, for messages (credentials masked)."""
        return f"{self.shown.rstrip('/')}/{name}"

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name``, or ``None`` when it does not exist."""
        try:
            data: bytes = self.fs.cat_file(self._path(name))
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CacheStorageError(f"cache {self.url(name)}: cannot read: {self._reason(err)}") from None
        return data

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically: the bytes go to ``.tmp/<random>`` first, then move to ``name``."""
        final = self._path(name)
        temp = self._path(f".tmp/{name.replace('/', '_')}.{uuid.uuid4().hex}")
        try:
            for folder in (temp.rsplit("/", 1)[0], final.rsplit("/", 1)[0]):
                self.fs.makedirs(folder, exist_ok=True)  # a no-op on object stores
            self.fs.pipe_file(temp, data)
            self.fs.mv(temp, final)
        except BaseException as err:
            try:
                if self.fs.exists(temp):
                    self.fs.rm(temp)
            except Exception:
                pass  # best effort: a stray temporary object is never read
            if isinstance(err, OSError):
                raise CacheStorageError(f"cache {self.url(name)}: cannot write: {self._reason(err)}") from None
            raise
