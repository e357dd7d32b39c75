"""The content-addressed image cache: PNG + JSON sidecar per image, keyed by a hash of everything.

Key = sha256 of (model fingerprint, prompt, seed, generation parameters). Prompt text never becomes a
path: files are ``<root>/<key[:2]>/<key>.png`` and ``.json``. The sidecar records the inputs and the
PNG's own hash, so a truncated or altered PNG is detected, reported with a warning and regenerated.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from pytest_t2ibias._io import write_bytes_atomic, write_text_atomic

CACHE_FORMAT = 1


class CacheCorruptionWarning(UserWarning):
    """A cache entry was unreadable or inconsistent; it is regenerated."""


def cache_key(fingerprint: str, prompt: str, seed: int, params: dict[str, Any]) -> str:
    """The hash that names a cached image."""
    blob = json.dumps(
        {"format": CACHE_FORMAT, "model": fingerprint, "prompt": prompt, "seed": int(seed), "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ImageCache:
    """Images on disk, safe to share between processes (atomic writes; the last writer wins)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def png_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def _meta_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def load(self, key: str) -> Image.Image | None:
        """The cached image, or ``None`` when absent; a corrupt entry is reported with a warning.

        The writer puts the sidecar down before the PNG, so a sidecar alone is a store in progress
        (or an interrupted one): a plain miss. A PNG without its sidecar, or one whose bytes do not
        match the sidecar's hash, is corrupt. Nothing is deleted here: the caller regenerates and
        :meth:`store` replaces both files, so a concurrent writer's fresh files are never removed.
        """
        png, meta = self.png_path(key), self._meta_path(key)
        if not png.exists():
            return None
        problem = self._check(key, png, meta)
        if problem is None:
            with Image.open(png) as image:
                return image.convert("RGB")
        warnings.warn(f"t2ibias cache: {png}: {problem}; regenerating", CacheCorruptionWarning, stacklevel=2)
        return None

    def _check(self, key: str, png: Path, meta: Path) -> str | None:
        try:
            sidecar = json.loads(meta.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return "sidecar JSON missing"
        except (OSError, ValueError) as err:
            return f"sidecar JSON unreadable ({err})"
        if not isinstance(sidecar, dict) or sidecar.get("key") != key:
            return "sidecar JSON does not belong to this entry"
        try:
            data = png.read_bytes()
        except FileNotFoundError:
            return "PNG missing"
        if hashlib.sha256(data).hexdigest() != sidecar.get("png_sha256"):
            return "PNG does not match the hash recorded in its sidecar (truncated or altered)"
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            return f"PNG unreadable ({err})"
        return None

    def store(self, key: str, image: Image.Image, meta: dict[str, Any]) -> Path:
        """Write the sidecar, then the PNG: a PNG on disk always has its sidecar already.

        Both writes are atomic and skip fsync (entries are verified on read and regenerated).
        """
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
        sidecar = {"key": key, "format": CACHE_FORMAT, "png_sha256": hashlib.sha256(data).hexdigest(), **meta}
        write_text_atomic(
            self._meta_path(key), json.dumps(sidecar, sort_keys=True, indent=1, default=str), durable=False
        )
        png = self.png_path(key)
        write_bytes_atomic(png, data, durable=False)
        return png
