"""Reading files that may not be files: a FIFO, a device, a folder where a cache entry or a baseline
should be.

``Path.read_bytes`` on a FIFO blocks until a writer appears (forever, in practice), and on ``/dev/zero``
never ends. :func:`read_regular_bytes` opens without blocking (``O_NONBLOCK``: opening a FIFO for reading
returns at once), checks with ``fstat`` on the opened descriptor that it is a regular file (no race
between a check and the open), and reads at most ``limit`` bytes. Anything else is an ``OSError`` whose
``strerror`` says what the path is, so callers that already report ``OSError`` as "cannot read" name it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: What a path that is not a regular file is, for messages.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFileError(OSError):
    """The path exists but is not a regular file (or is larger than the reader allows)."""


def kind_of(mode: int) -> str:
    """``"a FIFO"``, ``"a folder"``, ... for an ``st_mode`` that is not a regular file's."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_bytes(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), never blocking on a FIFO or device.

    Raises:
        FileNotFoundError: nothing there.
        NotRegularFileError: a FIFO, folder, device or socket there, or a file over ``limit`` bytes.
        OSError: any other failure to open or read (permissions, a file where a folder should be).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(errno.EINVAL, f"not a regular file ({kind_of(info.st_mode)})", str(path))
        if limit is not None and info.st_size > limit:
            raise NotRegularFileError(errno.EFBIG, f"too large ({info.st_size} bytes, at most {limit})", str(path))
        # a regular file ignores O_NONBLOCK: this reads it whole (a file growing meanwhile stops at limit + 1)
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 20 if limit is None else min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                raise NotRegularFileError(errno.EFBIG, f"too large (over {limit} bytes)", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)
