"""The generator interface: prompts and seeds in, PIL images out, plus a fingerprint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image


@runtime_checkable
class ImageGenerator(Protocol):
    """What the generation stage needs of a model.

    ``fingerprint`` identifies the weights (hub id + revision, a hash of local files, ...);
    ``params`` are every setting that changes the pixels (steps, guidance, size, dtype, scheduler).
    Both enter the cache key. ``generate`` must make image i from ``prompts[i]`` and ``seeds[i]``
    alone, not from the other images of the call. The number of images in the call and the image's
    place in it may still move pixels by float rounding (kernels pick their arithmetic by batch shape),
    so the generation stage calls ``generate`` on fixed blocks of at most ``batch_size`` images of the
    plan and keeps the block's length and the image's slot in the cache key.
    """

    fingerprint: str
    batch_size: int

    @property
    def params(self) -> dict[str, Any]: ...

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]: ...


@dataclass(frozen=True)
class ImageRequest:
    """One image to make: where it belongs in the suite, its prompt and its seed."""

    category: str
    prompt_index: int
    image_index: int
    prompt: str
    seed: int


def check_generate_inputs(prompts: Sequence[str], seeds: Sequence[int]) -> None:
    """Shared input check for adapters: one seed per prompt, prompts are text."""
    if len(prompts) != len(seeds):
        raise ValueError(f"`prompts` and `seeds` must have equal length, got {len(prompts)} and {len(seeds)}")
    bad = [p for p in prompts if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"`prompts` must be non-empty strings, got {bad[:3]!r}")
