"""One place that turns a scorer spec string into an annotator.

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
=============================================  ===========================================================
"""

from __future__ import annotations

from pathlib import Path

from pytest_t2ibias.annotate.base import ImageAnnotator
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode

#: The tiny CLIP's random weights cannot tell a person from an empty scene; skip that check for it so
#: plumbing tests and examples get labels (a real scorer keeps the default threshold).
_TINY_PERSON_THRESHOLD = float("-inf")


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
) -> ImageAnnotator:
    """The annotator a spec string names (see the module docstring); ``allow_pickle`` lets a ``hf:``,
    ``vqa:`` or ``captioner:`` checkpoint load pickle (``.bin``) weights (default: safetensors only)."""
    if spec == "synthetic" or spec.startswith("synthetic:"):
        from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator

        return SyntheticAnnotator.from_spec(spec, suite)
    if spec.startswith("labels:"):
        from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

        return PrecomputedLabels.from_file(Path(spec.removeprefix("labels:")), suite)
    if spec.startswith("vqa:"):
        from pytest_t2ibias.annotate.vqa import VqaAnnotator

        return VqaAnnotator.from_spec(
            spec.removeprefix("vqa:"),
            suite,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            local_files_only=local_files_only,
            allow_pickle=allow_pickle,
        )
    if spec.startswith("captioner:"):
        from pytest_t2ibias.annotate.captioner import CaptionerAnnotator

        return CaptionerAnnotator.from_spec(
            spec.removeprefix("captioner:"),
            suite,
            mode=mode,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            local_files_only=local_files_only,
            allow_pickle=allow_pickle,
        )
    from pytest_t2ibias.annotate.clip import ClipAnnotator, ClipThresholds
    from pytest_t2ibias.annotate.clip_backends import load_clip_backend

    backend = load_clip_backend(
        spec,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        local_files_only=local_files_only,
        allow_pickle=allow_pickle,
    )
    thresholds = ClipThresholds(person_threshold=_TINY_PERSON_THRESHOLD) if spec.startswith("tiny") else None
    return ClipAnnotator(suite, backend, thresholds)
