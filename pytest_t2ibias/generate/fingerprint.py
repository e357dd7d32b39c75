"""Model fingerprints: what identifies the weights that made an image (part of every cache key)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from pytest_t2ibias._io import write_text_atomic

#: Files that make a local pipeline: configs, tokenizer files and weights.
_MODEL_SUFFIXES = {".json", ".txt", ".model", ".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx"}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def default_memo_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-t2ibias" / "file-hashes.json"


def _file_digest(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def local_fingerprint(root: Path, memo_path: Path | None = None) -> str:
    """``local:<hash>`` of every config, tokenizer and weight file under ``root`` (names + contents).

    File digests are remembered by (path, size, mtime) in a small JSON memo, so re-fingerprinting a
    multi-GB checkpoint costs a few ``stat`` calls; a changed file is re-hashed.
    """
    root = Path(root).resolve()
    memo_file = memo_path or default_memo_path()
    try:
        memo: dict[str, Any] = json.loads(memo_file.read_text(encoding="utf-8"))
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}  # a missing or corrupt memo only costs re-hashing
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _MODEL_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{root}: no config or weight files to fingerprint")
    combined = hashlib.sha256()
    changed = False
    for path in files:
        stat = path.stat()
        key = str(path)
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = memo.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
            digest = entry["sha256"]
        else:
            digest = _file_digest(path)
            memo[key] = {"stamp": stamp, "sha256": digest}
            changed = True
        combined.update(f"{path.relative_to(root).as_posix()}\0{digest}\n".encode())
    if changed:
        try:
            write_text_atomic(memo_file, json.dumps(memo, sort_keys=True))
        except OSError:
            pass  # a read-only home only costs re-hashing next time
    return "local:" + combined.hexdigest()[:20]


def hub_fingerprint(model_id: str, revision: str | None = None) -> str:
    """``hub:<id>@<commit>``: the revision resolved to a commit from the local hub cache when possible."""
    resolved = revision or "main"
    if not _COMMIT.match(resolved):
        commit = _cached_commit(model_id, resolved)
        if commit:
            resolved = commit
    return f"hub:{model_id}@{resolved}"


def _cached_commit(model_id: str, ref: str) -> str | None:
    try:
        from huggingface_hub import constants
    except ModuleNotFoundError:  # pragma: no cover - a diffusers dependency
        return None
    ref_file = Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}" / "refs" / ref
    try:
        commit = ref_file.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return commit if _COMMIT.match(commit) else None
