"""What an image must be to enter the cache, and to be used from it.

A generator's output is checked before anything of its batch is cached (:func:`check_generated`): a
PIL image, an 8-bit mode (``RGB``, ``RGBA``, ``L``, ``P``; a float image must also be finite), and the
size the generator's ``params`` ask for (``width``/``height``, or ``size`` for a square), or, when they
name none, within :data:`MIN_SIDE` .. :data:`MAX_SIDE` and :data:`MAX_IMAGE_PIXELS`. A bad output is one
:class:`GeneratedImageError` naming the model, the prompt and the seed; nothing is cached, so a rerun
does not read a poisoned entry.

A cached entry is checked the same way before use (:func:`entry_problem`): mode ``RGB`` (the cache stores
RGB only), the expected size, the pixel bound (checked on the PNG header, before decoding: a
decompression bomb is never decompressed). A bad entry is a corrupt entry: warned and regenerated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image

from pytest_t2ibias._io import short_repr
from pytest_t2ibias.errors import GeneratedImageError as GeneratedImageError

if TYPE_CHECKING:
    from pytest_t2ibias.generate.base import ImageRequest

#: The most pixels an image may have (8192 x 8192): SDXL-class models make 1-4 MP; a bigger image is a
#: bug or a forged entry, and decoding one costs seconds and gigabytes.
MAX_IMAGE_PIXELS = 8192 * 8192
#: The longest side; the shortest, when the generator's params name no size (nothing reads a smaller image).
MAX_SIDE = 16384
MIN_SIDE = 8
#: The most bytes a cached PNG may have: an incompressible RGB image of MAX_IMAGE_PIXELS, plus headers.
MAX_PNG_BYTES = 3 * MAX_IMAGE_PIXELS + (1 << 20)
#: The modes a generator may return (converted to RGB for the cache); the cache holds RGB only.
GENERATED_MODES = frozenset({"RGB", "RGBA", "L", "P"})
CACHED_MODE = "RGB"


def expected_size(params: Mapping[str, Any]) -> tuple[int, int] | None:
    """The (width, height) a generator's ``params`` ask for, or None when they name none.

    >>> expected_size({"width": 512, "height": 768}), expected_size({"size": 64}), expected_size({"steps": 4})
    ((512, 768), (64, 64), None)
    """

    def side(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    width, height = side(params.get("width")), side(params.get("height"))
    if width is not None and height is not None:
        return width, height
    square = side(params.get("size"))
    return (square, square) if square is not None else None


def size_problem(size: tuple[int, int], expected: tuple[int, int] | None) -> str | None:
    """What is wrong with an image's (width, height), or None."""
    width, height = size
    if expected is not None and size != expected:
        return f"size {width}x{height}, expected {expected[0]}x{expected[1]}"
    if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_SIDE:
        return f"size {width}x{height} over the bound ({MAX_IMAGE_PIXELS} pixels, {MAX_SIDE} a side)"
    if expected is None and min(width, height) < MIN_SIDE:
        return f"size {width}x{height} under the bound ({MIN_SIDE} a side)"
    return None


def output_problem(image: object, expected: tuple[int, int] | None) -> str | None:
    """What is wrong with one generator output, or None."""
    if not isinstance(image, Image.Image):
        return f"returned {type(image).__name__}, not a PIL image"
    problem = size_problem(image.size, expected)
    if problem is not None:
        return problem
    if image.mode == "F":
        # a float image (a pipeline's raw output) with NaN or inf would cache as garbage pixels
        low, high = image.getextrema()
        if not (math.isfinite(float(low)) and math.isfinite(float(high))):  # type: ignore[arg-type]
            return f"non-finite pixel values (min {low}, max {high})"
    if image.mode not in GENERATED_MODES:
        return f"mode {image.mode!r}, not an 8-bit image ({', '.join(sorted(GENERATED_MODES))})"
    return None


def check_generated(
    images: Sequence[object], fingerprint: str, params: Mapping[str, Any], requests: Sequence[ImageRequest]
) -> list[Image.Image]:
    """The batch's images in the cache's mode (RGB), after checking each; raises on the first bad one.

    Raises:
        GeneratedImageError: names the model, the prompt, the seed and what is wrong.
    """
    expected = expected_size(params)
    out = []
    for request, image in zip(requests, images, strict=True):
        problem = output_problem(image, expected)
        if problem is not None:
            raise GeneratedImageError(
                f"model {fingerprint}: unusable image for prompt {short_repr(request.prompt)} seed {request.seed}: "
                f"{problem}; nothing of its batch was cached"
            )
        assert isinstance(image, Image.Image)
        out.append(image if image.mode == CACHED_MODE else image.convert(CACHED_MODE))
    return out


def entry_problem(image: Image.Image, expected: tuple[int, int] | None) -> str | None:
    """What is wrong with an opened (not yet decoded) cached PNG, or None."""
    if image.format != "PNG":
        return f"not a PNG ({image.format})"
    if image.mode != CACHED_MODE:
        return f"mode {image.mode!r}, the cache holds {CACHED_MODE} only"
    return size_problem(image.size, expected)
