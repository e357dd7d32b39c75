"""Loading Hugging Face checkpoints: hub id or local folder, offline mode, one-line errors.

One implementation for the diffusers generator and every transformers-backed annotator (VQA,
captioner, ``hf:`` CLIP). Nothing heavy is imported at module level: the pytest plugin imports the
package in every run, so huggingface_hub (and whatever a loader needs) is imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_t2ibias.errors import ModelLoadError

#: Values of ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` that mean "offline" (upper-cased).
_TRUE = {"1", "ON", "YES", "TRUE"}

#: Appended to a transformers checkpoint that fails to load from a local folder.
LOCAL_FOLDER_HINT = " (is it a folder written by save_pretrained, model and processor?)"
#: Appended to a transformers checkpoint that fails to load from the hub.
HUB_HINT = " (offline? download it once with network access, or pass a local folder saved with save_pretrained)"
#: Appended to a ``hf:`` CLIP model that fails to load from the hub (a local folder gets no hint).
CLIP_HUB_HINT = " (offline? pass a local folder saved with save_pretrained)"
#: Appended to a diffusers pipeline that fails to load from the hub (a local folder gets no hint).
PIPELINE_HUB_HINT = " (offline? pass a local path, or pre-download it with `huggingface-cli download`)"
#: Appended to an open_clip checkpoint that cannot be fetched.
OPEN_CLIP_HINT = " (offline? pass a local .safetensors)"


def hub_offline() -> bool:
    """Whether the hub is off limits now (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``).

    huggingface_hub reads these variables once, at import; reading them again here honours a variable
    set later (in a test, a notebook), which would otherwise mean minutes of connection retries.
    """
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if value.upper() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ModuleNotFoundError:  # pragma: no cover - a transformers and diffusers dependency
        return False
    return bool(constants.HF_HUB_OFFLINE)


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a filesystem path rather than a hub id (``org/model``).

    Empty, starting with ``.``, ``/`` or ``~``, more than one ``/``, or any ``\\`` (a Windows path).
    """
    return not name or name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def checkpoint_source(name: str, what: str) -> tuple[str, bool]:
    """``(what to pass to from_pretrained, is it a local folder)``; a missing path is an error here.

    Raises:
        ModelLoadError: ``name`` looks like a path (``/``, ``.``, ``~``, more than one ``/``, a ``\\``)
            and does not exist; the message is ``"<what> path '<name>' does not exist"``.
    """
    path = Path(name).expanduser()
    if path.exists():
        return str(path), True
    if looks_like_path(name):
        raise ModelLoadError(f"{what} path {name!r} does not exist")
    return name, False


def first_error_line(err: BaseException) -> str:
    """The first line of an exception's message (library errors run to a page), or its type's name."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_pretrained(
    name: str,
    what: str,
    loaders: Sequence[Any],
    local_files_only: bool = False,
    *,
    hub_hint: str = HUB_HINT,
    local_hint: str = LOCAL_FOLDER_HINT,
) -> list[Any]:
    """``loader.from_pretrained(name)`` for each loader, with unavailability as :class:`ModelLoadError`.

    The hub is not asked when ``local_files_only`` is set, ``name`` is a local folder, or
    :func:`hub_offline` says so.

    Raises:
        ModelLoadError: names ``name`` and says what to do (offline, missing files, wrong kind of model):
            ``"cannot load <what> '<name>': <first line of the error><hint>"``.
    """
    source, is_local = checkpoint_source(name, what)
    offline = local_files_only or is_local or hub_offline()
    try:
        return [loader.from_pretrained(source, local_files_only=offline) for loader in loaders]
    except (OSError, ValueError, KeyError) as err:
        hint = local_hint if is_local else hub_hint
        raise ModelLoadError(f"cannot load {what} {name!r}: {first_error_line(err)}{hint}") from err


__all__ = [
    "CLIP_HUB_HINT",
    "HUB_HINT",
    "LOCAL_FOLDER_HINT",
    "OPEN_CLIP_HINT",
    "PIPELINE_HUB_HINT",
    "checkpoint_source",
    "first_error_line",
    "hub_offline",
    "load_pretrained",
    "looks_like_path",
]
