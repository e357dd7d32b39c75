"""Wrap any function (an API model, a custom sampler) as a generator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PIL import Image

from pytest_t2ibias.generate.base import check_generate_inputs

GenerateFn = Callable[[str, int], Image.Image]


class CallableGenerator:
    """A generator from ``fn(prompt, seed) -> PIL.Image``.

    ``name`` and ``params`` form the fingerprint: change either when the function's output changes
    (a new API model version), or cached images of the old one will be reused.

    Example:
        >>> from PIL import Image
        >>> gen = CallableGenerator(lambda prompt, seed: Image.new("RGB", (8, 8), (seed % 256, 0, 0)),
        ...                         name="solid-red", params={"size": 8})
        >>> gen.generate(["a cat"], [7])[0].getpixel((0, 0))
        (7, 0, 0)
    """

    def __init__(self, fn: GenerateFn, name: str, params: Mapping[str, Any] | None = None, batch_size: int = 1) -> None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable as fn(prompt, seed) -> PIL.Image, got {type(fn).__name__}")
        self.fn = fn
        self.name = name
        self._params = dict(params or {})
        self.batch_size = batch_size
        digest = hashlib.sha256(json.dumps(self._params, sort_keys=True, default=str).encode()).hexdigest()[:12]
        self.fingerprint = f"callable:{name}:{digest}"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        check_generate_inputs(prompts, seeds)
        images = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            image = self.fn(prompt, seed)
            if not isinstance(image, Image.Image):
                raise TypeError(f"{self.name}: `fn` must return a PIL.Image, got {type(image).__name__}")
            images.append(image.convert("RGB"))
        return images
