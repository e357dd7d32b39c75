"""The generation stage: (suite, generator) -> images, each generated once and cached."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
from pytest_t2ibias.generate.cache import ImageCache, cache_key
from pytest_t2ibias.generate.seeds import image_seed

if TYPE_CHECKING:
    from PIL import Image

    from pytest_t2ibias.suites.schema import Suite


@dataclass(frozen=True)
class GeneratedImage:
    request: ImageRequest
    key: str
    image: Image.Image
    path: Path | None
    cached: bool


@dataclass
class GenerationResult:
    images: list[GeneratedImage] = field(default_factory=list)
    new: int = 0
    cached: int = 0

    def by_category(self, category: str) -> list[GeneratedImage]:
        return [g for g in self.images if g.request.category == category]


def plan_requests(
    suite: Suite,
    images_per_prompt: int | None = None,
    categories: Sequence[str] | None = None,
    seed: int | None = None,
) -> list[ImageRequest]:
    """Every image of the suite with its own seed (suite order: category, prompt, image)."""
    n = suite.images_per_prompt if images_per_prompt is None else images_per_prompt
    if n < 1:
        raise ValueError(f"`images_per_prompt` must be >= 1, got {n}")
    chosen = list(suite.categories) if categories is None else list(dict.fromkeys(categories))
    unknown = [c for c in chosen if c not in suite.categories]
    if unknown:
        raise ValueError(f"`categories` {unknown} not in suite {suite.name!r}; valid: {list(suite.categories)}")
    base_seed = suite.seed if seed is None else seed
    return [
        ImageRequest(category, p, i, prompt, image_seed(base_seed, category, p, i))
        for category in chosen
        for p, prompt in enumerate(suite.categories[category].prompts)
        for i in range(n)
    ]


def generate_images(
    requests: Sequence[ImageRequest],
    generator: ImageGenerator,
    cache: ImageCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Images for ``requests``: cache hits are read, misses generated in batches and stored.

    Batches follow ``generator.batch_size``; since every image has its own seed, the batch an image
    lands in does not change it. ``progress(k)`` is called after k more images are done.
    """
    params = generator.params
    keys = [cache_key(generator.fingerprint, r.prompt, r.seed, params) for r in requests]
    slots: list[GeneratedImage | None] = [None] * len(requests)
    missing: list[int] = []
    for index, (request, key) in enumerate(zip(requests, keys, strict=True)):
        image = cache.load(key) if cache is not None else None
        if image is None:
            missing.append(index)
        else:
            slots[index] = GeneratedImage(request, key, image, cache.png_path(key) if cache else None, True)
            if progress:
                progress(1)
    for start in range(0, len(missing), max(1, generator.batch_size)):
        batch = missing[start : start + generator.batch_size]
        images = generator.generate([requests[i].prompt for i in batch], [requests[i].seed for i in batch])
        if len(images) != len(batch):
            raise RuntimeError(f"generator {generator.fingerprint} returned {len(images)} images for {len(batch)}")
        for index, image in zip(batch, images, strict=True):
            request, key = requests[index], keys[index]
            path = None
            if cache is not None:
                meta = {
                    "model": generator.fingerprint,
                    "prompt": request.prompt,
                    "seed": request.seed,
                    "category": request.category,
                    "prompt_index": request.prompt_index,
                    "image_index": request.image_index,
                    "params": params,
                }
                path = cache.store(key, image, meta)
            slots[index] = GeneratedImage(request, key, image, path, False)
        if progress:
            progress(len(batch))
    done = [s for s in slots if s is not None]
    assert len(done) == len(requests)
    return GenerationResult(done, new=len(missing), cached=len(requests) - len(missing))
