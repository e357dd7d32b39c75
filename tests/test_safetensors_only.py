"""Safetensors only, for every checkpoint the package loads (issue 21, item 8).

A ``hf:``, ``vqa:`` or ``captioner:`` folder holding only pickle weights (``pytorch_model.bin``) is one
``ModelLoadError`` saying to convert it or to pass the allow-pickle option, and nothing is unpickled;
with ``allow_pickle`` it loads. Tiny random models built in memory, their weights saved as a pickle: no
download.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.errors import ModelLoadError
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("t2i-biasbench")


def _tiny_clip(suite: Suite) -> tuple[Any, Any]:
    from pytest_t2ibias.annotate.clip_backends import build_tiny_hf_clip

    return build_tiny_hf_clip()


def _tiny_vqa(suite: Suite) -> tuple[Any, Any]:
    from pytest_t2ibias.annotate.vqa import build_tiny_vqa

    return build_tiny_vqa(suite)


def _tiny_captioner(suite: Suite) -> tuple[Any, Any]:
    from pytest_t2ibias.annotate.captioner import build_tiny_captioner

    return build_tiny_captioner(suite)


KINDS: list[tuple[str, Callable[[Suite], tuple[Any, Any]]]] = [
    ("hf", _tiny_clip),
    ("vqa", _tiny_vqa),
    ("captioner", _tiny_captioner),
]


def _pickle_only(folder: Path, suite: Suite, build: Callable[[Suite], tuple[Any, Any]]) -> Path:
    """A checkpoint folder whose weights are ``pytorch_model.bin`` only. transformers 5 writes safetensors
    even with ``safe_serialization=False``, so the pickle is written with ``torch.save``, the way older
    versions (and many hub checkpoints) did."""
    import torch

    model, processor = build(suite)
    model.save_pretrained(folder, safe_serialization=False)
    processor.save_pretrained(folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    if not (folder / "pytorch_model.bin").is_file():
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything unpickles a weight file (torch.load goes through pickle's Unpickler)."""
    import torch

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a pickle weight file was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)


@pytest.mark.parametrize(("prefix", "build"), KINDS, ids=[k[0] for k in KINDS])
def test_a_pickle_only_folder_is_refused(
    tmp_path: Path, suite: Suite, prefix: str, build: Callable[[Suite], tuple[Any, Any]], no_unpickling: None
) -> None:
    folder = _pickle_only(tmp_path / "model", suite, build)
    with pytest.raises(ModelLoadError) as info:
        load_annotator(f"{prefix}:{folder}", suite, device="cpu")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert str(folder) in message and "pytorch_model.bin" in message
    assert "safetensors" in message and "--allow-pickle" in message


@pytest.mark.parametrize(("prefix", "build"), KINDS, ids=[k[0] for k in KINDS])
def test_allow_pickle_loads_it(
    tmp_path: Path, suite: Suite, prefix: str, build: Callable[[Suite], tuple[Any, Any]]
) -> None:
    folder = _pickle_only(tmp_path / "model", suite, build)
    annotator = load_annotator(f"{prefix}:{folder}", suite, device="cpu", allow_pickle=True)
    assert annotator is not None


def test_every_model_loader_is_asked_for_safetensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub checkpoint is not looked at before loading: ``use_safetensors=True`` makes transformers refuse
    its pickle weights; processors are not given it."""
    import transformers

    from pytest_t2ibias._hf import load_pretrained

    seen: dict[str, dict[str, Any]] = {}

    def recorder(name: str) -> Any:
        def from_pretrained(source: str, **kwargs: Any) -> str:
            seen[name] = kwargs
            return name

        return classmethod(lambda cls, source, **kwargs: from_pretrained(source, **kwargs))

    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained", recorder("model"))
    monkeypatch.setattr(transformers.CLIPProcessor, "from_pretrained", recorder("processor"))
    load_pretrained("org/model", "CLIP model", [transformers.CLIPModel, transformers.CLIPProcessor], True)
    assert seen["model"]["use_safetensors"] is True and "use_safetensors" not in seen["processor"]
    load_pretrained("org/model", "CLIP model", [transformers.CLIPModel], True, allow_pickle=True)
    assert "use_safetensors" not in seen["model"]


def test_a_hub_checkpoint_without_safetensors_names_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from pytest_t2ibias._hf import load_pretrained

    def no_safetensors(*args: Any, **kwargs: Any) -> None:
        raise OSError("org/model does not appear to have a file named model.safetensors")

    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained", no_safetensors)
    with pytest.raises(ModelLoadError, match=r"no \.safetensors weights; .*--allow-pickle"):
        load_pretrained("org/model", "CLIP model", [transformers.CLIPModel], True)
