"""File I/O shared by every stage. Atomic writes: a temp file in the target folder, then ``os.replace``.

A killed process leaves either the old file or the new one, never half of one; two processes writing
the same path both succeed and the last rename wins.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back (once, at import,
    os.umask(mask)  # since the umask is process-wide and threads may write at the same time)
    return mask


_UMASK = _read_umask()


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically; ``durable`` also fsyncs, surviving a power cut.

    Caches whose entries are verified on read can skip the fsync: a lost entry is regenerated.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a report or a baseline gets the usual mode (0666 & ~umask)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str, durable: bool = True) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)
