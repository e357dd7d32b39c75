"""The content-addressed image cache: PNG + JSON sidecar per image, keyed by a hash of everything.

Key = sha256 of (model fingerprint, prompt, seed, generation parameters, and the length of the batch
the image is generated in with its place in it). Prompt text never becomes a path: files are
``<root>/<key[:2]>/<key>.png`` and ``.json``. The sidecar records the inputs and the PNG's own hash, so
a truncated or altered PNG is detected, reported with a warning and regenerated.

Several processes may fill one cache: writes are atomic, and :meth:`ImageCache.lock` gives an
inter-process lock (``<root>/locks/<hash>.lock``, an OS file lock that dies with its holder) so the
generation stage makes each batch once; its holder records itself beside it (``<hash>.holder``: pid,
host, command) so that a process waiting for it can say who it waits for, and the total wait is bounded
(``max_lock_wait``). Temp files a killed writer left behind are removed once stale.

Only regular files are read (a FIFO or folder in place of an entry is corrupt, never a hang), and an entry
is checked like a generator's output before use (:mod:`pytest_t2ibias.generate.validate`): a forged entry,
whose sidecar matches it, is still corrupt when its mode or size is not what the plan asks for.

The cache may also live at an fsspec URL (``s3://bucket/cache``, ``gs://...``, ``memory://...``):
the same layout there, written atomically (:mod:`pytest_t2ibias.generate.storage`), with a local
read-through copy folder that holds what this machine read or wrote, the locks, and the scored records.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from PIL import Image, UnidentifiedImageError

from pytest_t2ibias._files import kind_of, read_regular_bytes
from pytest_t2ibias._io import clip, make_cache_folder, write_bytes_atomic, write_text_atomic
from pytest_t2ibias.errors import CacheCorruptionWarning as CacheCorruptionWarning
from pytest_t2ibias.errors import LockTimeoutError as LockTimeoutError
from pytest_t2ibias.generate.storage import RemoteStore, is_url, local_copy_folder
from pytest_t2ibias.generate.validate import (
    CACHED_MODE,
    MAX_PNG_BYTES,
    GeneratedImageError,
    entry_problem,
    size_problem,
)

#: 2: the key holds the batch an image is generated in (length, slot); format 1 entries are not reused.
CACHE_FORMAT = 2
#: A temp file (``.<name>.<random>.tmp``) untouched this long belongs to a writer that died.
STALE_TEMP_AGE_S = 3600.0
#: How long the generation stage waits for another process's batch before generating it itself.
LOCK_TIMEOUT_S = 600.0
#: The default of ``--lock-timeout`` / ``--t2i-lock-timeout``: the most seconds a run waits, in total, for
#: batches other processes hold before it fails (a stopped or hung holder must not stall CI for hours).
MAX_LOCK_WAIT_S = 600.0
#: After this long waiting for a lock, say which lock and who holds it (a silent wait looks like a hang).
LOCK_NOTICE_AFTER_S = 5.0
#: A sidecar is a few kilobytes; more is not ours.
MAX_SIDECAR_BYTES = 1 << 20
_HEX = frozenset("0123456789abcdef")


def cache_key(
    fingerprint: str,
    prompt: str,
    seed: int,
    params: dict[str, Any],
    batch_size: int | None = None,
    batch_slot: int | None = None,
) -> str:
    """The hash that names a cached image.

    ``batch_size`` is the number of images in the ``generate`` call that makes this one and
    ``batch_slot`` its place in that call (the generation stage always passes both): kernels pick
    their arithmetic by batch shape and treat some rows apart (the last, say), so the same seed in a
    batch of another length, or in another slot, may differ by float rounding, and is another entry.
    What the other images of the batch are does not matter.
    """
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "model": fingerprint,
            "prompt": prompt,
            "seed": int(seed),
            "params": params,
            "batch": [batch_size, batch_slot],
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ImageCache:
    """Images on disk, safe to share between processes (atomic writes, per-batch locks).

    Args:
        root: the cache folder (created on the first store), or an fsspec URL of one (``s3://``,
            ``gs://``, ``file://``, ``memory://``) shared by runners without a common disk.
        lock_timeout: seconds the generation stage waits for a batch another live process is making
            before it makes the batch itself (still correct, only duplicated work).
        local_copy: with a URL, the local read-through copy folder (default: under
            ``$XDG_CACHE_HOME/t2ibias/remote/``); :attr:`root` is that folder.
        storage_options: with a URL, fsspec options (credentials, endpoint).
        max_lock_wait: the most seconds, in total over this object's life, that the generation stage
            waits for batches other processes hold; past it, :class:`LockTimeoutError`. None: no bound
            but ``lock_timeout`` per batch.
    """

    def __init__(
        self,
        root: str | Path,
        lock_timeout: float = LOCK_TIMEOUT_S,
        local_copy: str | Path | None = None,
        max_lock_wait: float | None = None,
        **storage_options: Any,
    ) -> None:
        self.remote: RemoteStore | None = None
        if is_url(root):
            self.remote = RemoteStore(str(root), **storage_options)
            root = local_copy if local_copy is not None else local_copy_folder(str(root))
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self.max_lock_wait = max_lock_wait
        #: Seconds the generation stage has waited for other processes' locks (against max_lock_wait).
        self.lock_waited_s = 0.0
        self._temp_files_checked = False

    @property
    def location(self) -> str:
        """The cache as the user named it, for messages: the folder, or the URL with credentials masked."""
        return self.remote.shown if self.remote is not None else str(self.root)

    @staticmethod
    def _names(key: str) -> tuple[str, str]:
        return f"{key[:2]}/{key}.png", f"{key[:2]}/{key}.json"

    def png_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def _meta_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str, expected_size: tuple[int, int] | None = None) -> Image.Image | None:
        """The cached image, or ``None`` when absent; a corrupt entry is reported with a warning.

        The writer puts the sidecar down before the PNG, so a sidecar alone is a store in progress
        (or an interrupted one): a plain miss. A PNG without its sidecar, or one whose bytes do not
        match the sidecar's hash, is corrupt; so is an entry that is not an RGB image of
        ``expected_size`` (what the plan asks for; None: only the size bounds) or is a decompression
        bomb, and a path that is not a regular file (a FIFO, a folder). Nothing is deleted here: the
        caller regenerates and :meth:`store` replaces both files, so a concurrent writer's fresh files
        are never removed.
        """
        png, meta = self.png_path(key), self._meta_path(key)
        try:
            data: bytes | None = read_regular_bytes(png, MAX_PNG_BYTES)
        except FileNotFoundError:
            data = None
        except OSError as err:  # a FIFO or folder there, a shard that is a file, unreadable: corrupt
            self._corrupt(png, f"PNG unreadable ({_reason(err)})")
            return None
        if data is None:
            if not self._pull(key, expected_size):
                return None
            data = self._read_local(png)
            if data is None:
                return None
        problem, image = self._check(key, meta, data, expected_size)
        if image is not None:
            return image
        self._corrupt(png, problem)
        return None

    def _corrupt(self, where: Path | str, problem: str | None) -> None:
        warnings.warn(f"t2ibias cache: {where}: {problem}; regenerating", CacheCorruptionWarning, stacklevel=3)

    @staticmethod
    def _read_local(png: Path) -> bytes | None:
        try:
            return read_regular_bytes(png, MAX_PNG_BYTES)
        except OSError:
            return None  # replaced by another process between the pull and this read: a miss

    def _pull(self, key: str, expected_size: tuple[int, int] | None = None) -> bool:
        """Copy a remote entry into the local copy, after checking it; whether there is one now.

        A remote PNG without its sidecar, or one that does not match it, is corrupt: reported, and left
        for the store that follows (the regenerated entry replaces it)."""
        if self.remote is None:
            return False
        png_name, meta_name = self._names(key)
        data = self.remote.read(png_name)
        if data is None:
            return False  # absent (a sidecar alone is a store in progress)
        sidecar = self.remote.read(meta_name)
        text = None if sidecar is None else sidecar.decode("utf-8", "replace")
        problem, _ = _problem(key, text, data, expected_size)
        if problem is not None:
            where = self.remote.url(png_name)
            warnings.warn(f"t2ibias cache: {where}: {problem}; regenerating", CacheCorruptionWarning, stacklevel=4)
            return False
        assert sidecar is not None
        self._clear_obstacles(key)
        make_cache_folder(self.root)
        write_bytes_atomic(self._meta_path(key), sidecar, durable=False)
        write_bytes_atomic(self.png_path(key), data, durable=False)
        return True

    def _check(
        self, key: str, meta: Path, data: bytes, expected_size: tuple[int, int] | None
    ) -> tuple[str | None, Image.Image | None]:
        try:
            text: str | None = read_regular_bytes(meta, MAX_SIDECAR_BYTES).decode("utf-8")
        except FileNotFoundError:
            text = None
        except (OSError, ValueError) as err:
            return f"sidecar JSON unreadable ({_reason(err)})", None
        return _problem(key, text, data, expected_size)

    def lock_path(self, keys: Sequence[str]) -> Path:
        """The lock file of the batch holding ``keys`` (in batch order)."""
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:32]
        return self.root / "locks" / f"{name}.lock"

    def lock(self, keys: Sequence[str]) -> FileLock:
        """An inter-process lock for the batch holding ``keys``; acquire it before generating the batch.

        It is an OS lock (``flock``): it dies with the process holding it, so a lock file that a killed
        run left behind is taken at once. Lock files stay (one empty file per batch ever generated);
        ``<root>/locks`` may be deleted whenever no run is using the cache.
        """
        path = self.lock_path(keys)
        make_cache_folder(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    def clean_stale_temp_files(self, max_age_s: float = STALE_TEMP_AGE_S) -> int:
        """Delete temp files of interrupted writes (``<root>/<xx>/.<name>.<random>.tmp``, and a lock's
        holder record in ``<root>/locks/``) older than ``max_age_s``; a fresher one may be another process's
        write in progress and is left alone.

        Returns how many were deleted. Called by the generation stage on its first cache miss.
        """
        now = time.time()
        removed = 0
        try:
            # a process killed while recording itself as a lock's holder leaves its temp file in locks/
            shards = [
                e for e in os.scandir(self.root) if (len(e.name) == 2 and set(e.name) <= _HEX) or e.name == "locks"
            ]
        except OSError:
            return 0  # no cache yet (or unreadable: the store that follows reports it)
        for shard in shards:
            try:
                if not shard.is_dir(follow_symlinks=False):
                    continue
                entries = list(os.scandir(shard.path))
            except OSError:
                continue
            for entry in entries:
                if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                    continue
                if shard.name == "locks" and ".holder." not in entry.name:
                    continue  # in locks/, only the temp files of holder records are ours
                try:
                    info = entry.stat(follow_symlinks=False)
                    if not entry.is_file(follow_symlinks=False) or now - info.st_mtime <= max_age_s:
                        continue
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # another process cleaned it, or its writer renamed it just now
                except OSError:
                    continue  # read-only cache: nothing to clean here
                removed += 1
        return removed

    def clean_stale_temp_files_once(self) -> int:
        """:meth:`clean_stale_temp_files` the first time it is called on this cache object."""
        if self._temp_files_checked:
            return 0
        self._temp_files_checked = True
        return self.clean_stale_temp_files()

    def store(self, key: str, image: Image.Image, meta: dict[str, Any]) -> Path:
        """Write the sidecar, then the PNG: a PNG on disk always has its sidecar already.

        Both writes are atomic and skip fsync (entries are verified on read and regenerated).
        """
        # what load() would refuse never enters the cache (it would be regenerated on every read)
        problem = size_problem(image.size, None)
        if problem is not None:
            raise GeneratedImageError(f"t2ibias cache: cannot store an image of {problem} ({key})")
        buffer = io.BytesIO()
        (image if image.mode == CACHED_MODE else image.convert(CACHED_MODE)).save(buffer, format="PNG")
        data = buffer.getvalue()
        sidecar = {"key": key, "format": CACHE_FORMAT, "png_sha256": hashlib.sha256(data).hexdigest(), **meta}
        text = json.dumps(sidecar, sort_keys=True, indent=1, default=str)
        if self.remote is not None:
            # remote first, in the same order: a remote PNG always has its sidecar; and an entry the local
            # copy holds is on the remote already (a crash in between leaves neither: regenerated next run)
            png_name, meta_name = self._names(key)
            self.remote.write(meta_name, text.encode("utf-8"))
            self.remote.write(png_name, data)
        make_cache_folder(self.root)
        self._clear_obstacles(key)
        write_text_atomic(self._meta_path(key), text, durable=False)
        png = self.png_path(key)
        write_bytes_atomic(png, data, durable=False)
        return png

    def _clear_obstacles(self, key: str) -> None:
        """Move aside what would make the atomic writes of ``key`` fail: a file where its shard folder
        should be, a folder or FIFO where its PNG or sidecar should be. Moved, not deleted (nothing is
        lost): renamed to ``.<name>.<random>.corrupt`` beside it, and reported."""
        shard = self.root / key[:2]
        for path in (shard, self.png_path(key), self._meta_path(key)):
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # absent (the usual case), or under a shard just moved aside
            if stat.S_ISDIR(mode) if path == shard else stat.S_ISREG(mode):
                continue
            if path == shard and stat.S_ISLNK(mode) and shard.is_dir():
                continue  # a symlinked shard folder is the user's layout
            aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.corrupt")
            try:
                os.replace(path, aside)
            except OSError:
                continue  # the write that follows reports the path
            what = kind_of(mode) if not stat.S_ISREG(mode) else "a file"
            warnings.warn(
                f"t2ibias cache: {path}: {what} where the cache needs a "
                f"{'folder' if path == shard else 'file'}; moved to {aside.name}",
                CacheCorruptionWarning,
                stacklevel=4,
            )

    def note_holder(self, keys: Sequence[str]) -> None:
        """Record who holds the batch lock of ``keys``; call right after acquiring (:func:`note_holder`)."""
        note_holder(self.lock_path(keys))

    def drop_holder(self, keys: Sequence[str]) -> None:
        """Remove the holder record of ``keys``'s lock; call before releasing it."""
        drop_holder(self.lock_path(keys))

    def holder(self, keys: Sequence[str]) -> str:
        """Who holds the batch lock of ``keys``, for messages."""
        return holder_text(self.lock_path(keys))


def note_holder(lock_path: Path) -> None:
    """Record who holds the lock at ``lock_path`` (``<lock>.holder``: pid, host, command, since), for the
    message of a process that waits for it. An OS lock cannot say who holds it."""
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv), "since": time.time()}
    try:
        write_text_atomic(lock_path.with_suffix(".holder"), json.dumps(record), durable=False)
    except OSError:
        pass  # only a message loses detail


def drop_holder(lock_path: Path) -> None:
    """Remove the holder record of the lock at ``lock_path``; call before releasing it."""
    try:
        os.unlink(lock_path.with_suffix(".holder"))
    except OSError:
        pass  # absent, or a read-only cache: a stale record names a process that no longer holds it


def holder_text(lock_path: Path) -> str:
    """Who holds the lock at ``lock_path``, as its holder recorded it."""
    try:
        record = json.loads(read_regular_bytes(lock_path.with_suffix(".holder"), 1 << 16))
        pid, host, command, since = record["pid"], record["host"], record["command"], record["since"]
        stamp = time.strftime("%H:%M:%S", time.localtime(float(since)))
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return "held by a process that left no holder record (an older t2ibias, or it is just starting)"
    return f"held by pid {pid} on {host} since {stamp} ({clip(str(command), 120)})"


def acquire_reporting(lock: FileLock, lock_path: Path, limit: float, what: str = "batch lock") -> bool:
    """Acquire ``lock`` within ``limit`` seconds; whether it was acquired. After
    :data:`LOCK_NOTICE_AFTER_S` it says on stderr which lock file it waits for and who holds it: a silent
    wait looks like a hang."""
    started = time.monotonic()
    try:
        lock.acquire(timeout=min(LOCK_NOTICE_AFTER_S, limit))
        return True
    except Timeout:
        if limit <= LOCK_NOTICE_AFTER_S:
            return False
    print(
        f"t2ibias cache: waiting for {what} {lock_path}, {holder_text(lock_path)}"
        + (f"; giving up after {limit:g} s" if limit != float("inf") else ""),
        file=sys.stderr,
        flush=True,
    )
    try:
        lock.acquire(timeout=max(0.0, limit - (time.monotonic() - started)))
        return True
    except Timeout:
        return False


def lock_timeout_error(what: str, lock_path: Path, waited: float, limit: float) -> LockTimeoutError:
    return LockTimeoutError(
        f"t2ibias cache: gave up waiting for {what} {lock_path} after {waited:.1f} s in all (lock timeout "
        f"{limit:g} s), {holder_text(lock_path)}; stop that process, or raise --lock-timeout / "
        "--t2i-lock-timeout / t2ibias_lock_timeout"
    )


def _problem(
    key: str, sidecar_text: str | None, data: bytes, expected_size: tuple[int, int] | None = None
) -> tuple[str | None, Image.Image | None]:
    """What is wrong with an entry (its sidecar's text and its PNG's bytes), or its image (RGB, decoded)."""
    if sidecar_text is None:
        return "sidecar JSON missing", None
    try:
        sidecar = json.loads(sidecar_text)
    except ValueError as err:
        return f"sidecar JSON unreadable ({err})", None
    if not isinstance(sidecar, dict) or sidecar.get("key") != key:
        return "sidecar JSON does not belong to this entry", None
    if hashlib.sha256(data).hexdigest() != sidecar.get("png_sha256"):
        return "PNG does not match the hash recorded in its sidecar (truncated or altered)", None
    # the hash only proves the sidecar was written with this PNG: a forged pair (or a bad generator of an
    # older version) still gets the checks a generator's output gets, on the header before decoding
    try:
        with warnings.catch_warnings():
            # PIL warns past Image.MAX_IMAGE_PIXELS (then our lower bound rejects the header, with its size)
            # and raises past twice that (caught below)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])  # reads the header only
            problem = entry_problem(image, expected_size)
            if problem is not None:
                return f"PNG {problem}", None
            image.load()
            return None, image
    except Image.DecompressionBombError as err:
        return f"PNG is a decompression bomb ({err})", None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        return f"PNG unreadable ({clip(str(err), 200)})", None


def _reason(err: BaseException) -> str:
    """An OSError in a few words: ``not a regular file (a FIFO)``, ``Is a directory``."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return clip(f"{type(err).__name__}: {err}", 200)
