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


# -- objects: a pipeline or module built in memory (a fine-tune, fused LoRA weights, a custom UNet) ---------

#: id(object) -> (a weak reference that proves the id still names that object, its fingerprint): hashing
#: a multi-GB model costs seconds, so it is done once per object and process.
_OBJECT_FINGERPRINTS: dict[int, tuple[Any, str]] = {}


def object_fingerprint(obj: Any, *, name: str | None = None, version: str | None = None) -> str:
    """The identity of a model given as an object: ``object:<class>:<hash>``, a hash of its configs and of
    every parameter's bytes; or ``object:<name>@<version>`` when the user names it.

    A diffusers pipeline is hashed component by component (in name order): each component's class, its
    ``config`` (schedulers, UNet shape, ...) and, for a ``torch.nn.Module``, its ``state_dict`` tensor by
    tensor (name, dtype, shape, and the SHA-256 of its raw bytes), all combined through BLAKE2b. Changing
    one parameter changes the fingerprint (another model: its own cached images, its results compared with
    the approved model's baselines); the same weights loaded twice give the same.
    The device is not part of it (the generation params carry the device type and dtype).

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 2)
        >>> first = object_fingerprint(layer)
        >>> with torch.no_grad():
        ...     _ = layer.weight.add_(1.0)
        >>> first == object_fingerprint(layer), object_fingerprint(layer) == object_fingerprint(layer)
        (True, True)
        >>> object_fingerprint(layer, name="mylab", version="3")
        'object:mylab@3'

    The cache is per object: a model changed in place after its first fingerprint keeps the old one, so
    build the model before the session asks for it (a fixture does).
    """
    if name is not None:
        return f"object:{name}@{version or 'unversioned'}"
    import weakref

    cached = _OBJECT_FINGERPRINTS.get(id(obj))
    if cached is not None and cached[0]() is obj:
        return cached[1]
    digest = hashlib.blake2b(digest_size=16)
    _hash_object(obj, digest)
    fingerprint = f"object:{type(obj).__name__}:{digest.hexdigest()[:20]}"
    try:
        _OBJECT_FINGERPRINTS[id(obj)] = (weakref.ref(obj), fingerprint)
    except TypeError:  # not weak-referenceable: not cached (hashed again next time, still correct)
        pass
    return fingerprint


def _hash_object(obj: Any, digest: Any) -> None:
    components = getattr(obj, "components", None)
    digest.update(f"class\0{type(obj).__module__}.{type(obj).__qualname__}\n".encode())
    _hash_config(obj, digest)
    if isinstance(components, dict):  # a diffusers pipeline: every component, in a stable order
        for key in sorted(components):
            digest.update(f"component\0{key}\n".encode())
            part = components[key]
            if part is None:
                continue
            digest.update(f"class\0{type(part).__module__}.{type(part).__qualname__}\n".encode())
            _hash_config(part, digest)
            _hash_module(part, digest)
            _hash_vocab(part, digest)
        return
    _hash_module(obj, digest)


def _hash_config(obj: Any, digest: Any) -> None:
    config = getattr(obj, "config", None)
    if config is None:
        return
    if hasattr(config, "to_dict"):  # transformers configs
        config = config.to_dict()
    if isinstance(config, dict):
        # `_name_or_path`, `_use_default_values` (a set's order: differs from run to run) and version stamps
        # are bookkeeping, not what the model computes
        kept = {k: v for k, v in config.items() if not k.startswith("_") and k != "transformers_version"}
        digest.update(json.dumps(kept, sort_keys=True, default=str).encode())


def _hash_module(obj: Any, digest: Any) -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.nn.Module):
        return
    from concurrent.futures import ThreadPoolExecutor

    def tensor_digest(tensor: Any) -> bytes:
        # the tensor's own bytes (no copy for a contiguous CPU tensor), streamed into SHA-256: hashlib
        # releases the GIL, so tensors hash on every core; SHA-256 has CPU instructions (twice BLAKE2b's
        # speed here), which keeps an SD-1.5-sized pipeline at a few seconds
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        return hashlib.sha256(flat.view(torch.uint8).numpy().data).digest()

    # state_dict: parameters and buffers by their (stable) names, combined in name order
    items = sorted(obj.state_dict().items())
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        digests = pool.map(tensor_digest, [tensor for _, tensor in items])
        for (key, tensor), part in zip(items, digests, strict=True):
            digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\n".encode())
            digest.update(part)


def _hash_vocab(obj: Any, digest: Any) -> None:
    vocab = getattr(obj, "get_vocab", None)  # a tokenizer: its vocabulary changes the text embeddings
    if callable(vocab):
        digest.update(json.dumps(vocab(), sort_keys=True).encode())
