"""Per-image seeds: image i of a prompt gets the same seed for every model and every batch size."""

from __future__ import annotations

import hashlib

_SEED_BITS = 63  # fits a signed 64-bit integer; torch.Generator.manual_seed accepts it


def image_seed(suite_seed: int, category: str, prompt_index: int, image_index: int) -> int:
    """A seed derived from (suite seed, category, prompt index, image index) alone.

    Hash-based rather than ``suite_seed + i`` so seeds of different categories and prompts never
    collide, and adding images to one prompt leaves every other image's seed unchanged.

    Example:
        >>> image_seed(0, "doctor", 0, 3) == image_seed(0, "doctor", 0, 3)
        True
        >>> image_seed(0, "doctor", 0, 3) != image_seed(0, "beauty", 0, 3)
        True
    """
    for name, value in (("prompt_index", prompt_index), ("image_index", image_index)):
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value}")
    key = f"t2ibias-seed-v1|{suite_seed}|{category}|{prompt_index}|{image_index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> (64 - _SEED_BITS)
