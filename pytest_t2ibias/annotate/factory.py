"""One place that turns a scorer spec string into an annotator: the registry of
:mod:`pytest_t2ibias.registry` (the built-ins below, ``python:module:attr``, installed entry points).

=============================================  ===========================================================
spec                                           annotator
=============================================  ===========================================================
``tiny``, ``tiny-open_clip``, ``tiny-hf``       CLIP zero-shot on a random-weight tiny CLIP (offline)
``open_clip:ARCH/PRETRAINED``                  CLIP zero-shot, open_clip (``open_clip:ViT-L-14/openai``)
``hf:MODEL_ID_OR_PATH``                        CLIP zero-shot, transformers (``hf:openai/clip-vit-large-patch14``)
``vqa:MODEL_ID_OR_PATH`` / ``vqa:tiny``        yes/no questions through a VQA model, P(yes)
``captioner:MODEL_ID_OR_PATH`` / ``...:tiny``  an image-to-text model's caption, labelled by the lexicons
``labels:PATH``                                precomputed labels from a CSV or JSON file
``synthetic``                                  reads the mark of the synthetic model's images exactly
``synthetic:PATH``                             the same, misreading at the rates of a YAML ``confusion``
``python:MODULE:ATTR``                         an object or factory of yours (see docs/own-model.md)
=============================================  ===========================================================
"""

from __future__ import annotations

from pathlib import Path

from pytest_t2ibias.annotate.base import ImageAnnotator
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode


def load_annotator(
    spec: str,
    suite: Suite,
    *,
    mode: Mode = "strict",
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int | None = None,
    local_files_only: bool = False,
    allow_pickle: bool = False,
    strict_labels: bool = True,
) -> ImageAnnotator:
    """The annotator a spec string names (see the module docstring).

    ``allow_pickle`` lets a ``hf:``, ``vqa:`` or ``captioner:`` checkpoint load pickle (``.bin``) weights
    (default: safetensors only). ``strict_labels=False``: precomputed labels that are missing, belong to no
    planned image or hold values outside the suite are counted warnings instead of errors.
    """
    from pytest_t2ibias.registry import BuildContext, build_annotator

    context = BuildContext(
        suite,
        mode=mode,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        local_files_only=local_files_only,
        allow_pickle=allow_pickle,
        root=Path.cwd(),
        strict_labels=strict_labels,
    )
    return build_annotator(spec, context)
