"""The generation stage: model adapters, per-image seeds, and the on-disk image cache."""

from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
from pytest_t2ibias.generate.cache import CacheCorruptionWarning, ImageCache, cache_key
from pytest_t2ibias.generate.callable_adapter import CallableGenerator
from pytest_t2ibias.generate.seeds import image_seed
from pytest_t2ibias.generate.stage import (
    GeneratedImage,
    GenerationResult,
    LockWaitWarning,
    generate_blocks,
    generate_images,
    plan_blocks,
    plan_requests,
)

__all__ = [
    "CacheCorruptionWarning",
    "CallableGenerator",
    "GeneratedImage",
    "GenerationResult",
    "ImageCache",
    "ImageGenerator",
    "ImageRequest",
    "LockWaitWarning",
    "cache_key",
    "generate_blocks",
    "generate_images",
    "image_seed",
    "plan_blocks",
    "plan_requests",
]
