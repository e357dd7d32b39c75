"""Test images and annotation inputs shared by the annotator tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.suites.schema import Suite


def noise_images(n: int, seed: int = 0, size: int = 64) -> list[Image.Image]:
    """``n`` seeded RGB noise images."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def annotation_items(suite: Suite, category: str, n: int) -> list[AnnotationInput]:
    """``n`` noise images of ``category`` with the category's first prompt, seeds 0..n-1 and paths."""
    prompt = suite.categories[category].prompts[0]
    return [
        AnnotationInput(f"{category}_{i}", image, prompt, seed=i, image_path=f"img/{category}_{i}.png")
        for i, image in enumerate(noise_images(n))
    ]
