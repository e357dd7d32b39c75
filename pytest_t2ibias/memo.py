"""A small JSON memo of what a model or scorer told about itself once built (its ``params``, its scorer id),
so a warm rerun that reads every image and label from the cache need not build it again.

Each entry is keyed by a hash of every input that decides what is remembered (the spec, the settings that
reach the factory, the versions of the libraries that run it; see ``registry.params_memo_key``). The memo
lives beside the fingerprint memo (``$XDG_CACHE_HOME/pytest-t2ibias``); a missing, unreadable or foreign
file costs only a build. Written atomically; never pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def memo_path(name: str) -> Path:
    """The memo file ``name`` (``generator-params.json``, ``scorer-ids.json``)."""
    from pytest_t2ibias.generate.fingerprint import default_memo_path

    return default_memo_path().with_name(name)


def plain(value: Any) -> Any:
    """``value`` as the memo's JSON gives it back (tuples as lists, keys as text): compared that way."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def read_memo(path: Path) -> dict[str, dict[str, Any]]:
    """The memo's entries that are objects (each caller checks the fields it reads)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: entry for key, entry in data.items() if isinstance(key, str) and isinstance(entry, dict)}


def write_memo(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Remember ``entry`` under ``key`` (other keys kept); a read-only home only costs a build next time."""
    from pytest_t2ibias._io import write_text_atomic

    memo = read_memo(path)
    memo[key] = entry
    try:
        write_text_atomic(path, json.dumps(memo, sort_keys=True))
    except OSError:
        pass


def settle(path: Path, key: str, remembered: dict[str, Any] | None, known: dict[str, Any]) -> dict[str, Any] | None:
    """What a built model or scorer tells (``known``) checked against what was ``remembered`` of it: the memo
    is written when they differ, and the remembered entry ``known`` contradicts is returned (None when
    nothing was remembered or it was right); the caller fails the run with it."""
    if remembered == known:
        return None
    write_memo(path, key, known)
    return remembered
