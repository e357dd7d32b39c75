"""Loading Hugging Face checkpoints: hub id or local folder, offline mode, one-line errors.

One implementation for the diffusers generator and every transformers-backed annotator (VQA,
captioner, ``hf:`` CLIP). Nothing heavy is imported at module level: the pytest plugin imports the
package in every run, so huggingface_hub (and whatever a loader needs) is imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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


#: Weight files that are Python pickles: loading one can run arbitrary code.
PICKLE_WEIGHTS = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
#: How to get out of a pickle-only checkpoint; ends the error that names one.
PICKLE_FIX = (
    "loading a pickle can run arbitrary code: convert it to safetensors (load it once with "
    "from_pretrained(path, use_safetensors=False) and save_pretrained(path, safe_serialization=True)) or, "
    "if you trust the files, pass --allow-pickle (pytest: --t2i-allow-pickle=true)"
)


def pickle_only(folder: Path) -> list[str]:
    """The pickle weight files of a local checkpoint folder that holds no ``.safetensors`` file (else ``[]``).

    Only the folder itself is looked at (a transformers checkpoint keeps its weights there), sorted.
    """
    names = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if any(name.endswith(".safetensors") for name in names):
        return []
    return [name for name in names if name.endswith(PICKLE_WEIGHTS)]


def _is_model(loader: Any) -> bool:
    """Whether ``loader`` loads weights (a model class or an ``AutoModel...``), not a processor or tokenizer:
    only those take ``use_safetensors`` (a processor would keep it as an unknown setting)."""
    from transformers import PreTrainedModel
    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    return isinstance(loader, type) and issubclass(loader, PreTrainedModel | _BaseAutoModelClass)


def hub_model_problem(
    model_id: str, revision: str | None = None, info: Callable[..., object] | None = None
) -> str | None:
    """Why hub model ``model_id`` cannot be loaded, when the hub says so for sure: no such repository (or a
    private one without a token), a gated one, no such revision. One line, for the run's start-up.

    None when the model is in the local hub cache, when the hub is off limits (``HF_HUB_OFFLINE``), or
    when it cannot be asked (no network, a proxy, a timeout): a run whose images are all cached needs no
    model, and a load that fails later says why itself. ``info`` stands for ``huggingface_hub.model_info``.
    """
    if hub_offline():
        return None
    try:
        import huggingface_hub
        from huggingface_hub import constants
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ModuleNotFoundError:  # pragma: no cover - a diffusers dependency
        return None
    if (Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}").is_dir():
        return None  # downloaded before: the load decides (offline or not)
    try:
        (info or huggingface_hub.model_info)(model_id, revision=revision, timeout=5)
    except RevisionNotFoundError:
        return f"model {model_id!r}: the hub has no revision {revision!r} of it (a branch, tag or commit)"
    except GatedRepoError:
        return f"model {model_id!r} is gated on the hub: accept its terms on its page, then log in (`hf auth login`)"
    except RepositoryNotFoundError:
        return (
            f"model {model_id!r} is not on the hub (a typo? a private model needs `hf auth login` or HF_TOKEN; "
            "a local folder needs a path that exists)"
        )
    except Exception:  # the hub could not be asked (no network, a proxy, a timeout): no verdict
        return None
    return None


def load_pretrained(
    name: str,
    what: str,
    loaders: Sequence[Any],
    local_files_only: bool = False,
    *,
    hub_hint: str = HUB_HINT,
    local_hint: str = LOCAL_FOLDER_HINT,
    allow_pickle: bool = False,
) -> list[Any]:
    """``loader.from_pretrained(name)`` for each loader, with unavailability as :class:`ModelLoadError`.

    The hub is not asked when ``local_files_only`` is set, ``name`` is a local folder, or
    :func:`hub_offline` says so. Weights load from ``.safetensors`` only (``use_safetensors=True``) unless
    ``allow_pickle``: a pickle runs code as it loads, and a checkpoint is someone else's file.

    Raises:
        ModelLoadError: names ``name`` and says what to do (offline, missing files, wrong kind of model,
            pickle weights only): ``"cannot load <what> '<name>': <first line of the error><hint>"``.
    """
    source, is_local = checkpoint_source(name, what)
    if is_local and not allow_pickle and (pickles := pickle_only(Path(source))):
        raise ModelLoadError(
            f"cannot load {what} {name!r}: its weights are pickle files only ({', '.join(pickles[:3])}); {PICKLE_FIX}"
        )
    offline = local_files_only or is_local or hub_offline()
    safe: dict[str, Any] = {} if allow_pickle else {"use_safetensors": True}
    try:
        return [
            loader.from_pretrained(source, local_files_only=offline, **(safe if _is_model(loader) else {}))
            for loader in loaders
        ]
    except (OSError, ValueError, KeyError) as err:
        if not allow_pickle and "safetensors" in str(err):  # a hub checkpoint with pickle weights only
            raise ModelLoadError(f"cannot load {what} {name!r}: no .safetensors weights; {PICKLE_FIX}") from err
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
    "hub_model_problem",
    "hub_offline",
    "load_pretrained",
]
