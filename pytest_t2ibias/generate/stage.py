"""The generation stage: (suite, generator) -> images, each generated once and cached.

Images are generated in fixed blocks of the plan (:func:`plan_blocks`): runs of ``batch_size``
consecutive requests of one category. A block with any image missing from the cache is generated
whole, so an image is always made in the same batch, beside the same neighbours, whatever the cache
held; its cache key holds that batch's length and the image's slot in it. Several processes may share one cache: each
block is generated under an inter-process lock, after re-checking the cache, so it is made once.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from pytest_t2ibias.errors import LockWaitWarning as LockWaitWarning
from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
from pytest_t2ibias.generate.cache import ImageCache, acquire_reporting, cache_key, lock_timeout_error
from pytest_t2ibias.generate.seeds import image_seed
from pytest_t2ibias.generate.validate import check_generated, expected_size
from pytest_t2ibias.suites.schema import MAX_IMAGES_PER_PROMPT

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
    """The images, in request order.

    ``new``: images that were not in the cache and that this call generated and stored; ``cached``:
    the others (read from the cache, some of them stored by another process while this one waited);
    ``new + cached`` is the number of requests. ``generated``: images the generator made in this call,
    ``new`` plus the cached neighbours regenerated with them in a block (their cached files are kept).
    """

    images: list[GeneratedImage] = field(default_factory=list)
    new: int = 0
    cached: int = 0
    generated: int = 0

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
    if not 1 <= n <= MAX_IMAGES_PER_PROMPT:
        raise ValueError(f"`images_per_prompt` must be between 1 and {MAX_IMAGES_PER_PROMPT}, got {n}")
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


def plan_blocks(requests: Sequence[ImageRequest], block_size: int) -> list[list[ImageRequest]]:
    """The fixed generation batches of a plan: runs of at most ``block_size`` consecutive requests that
    never cross a category boundary (a category's last block may be shorter).

    A category's blocks are therefore the same whether it is planned alone (a pytest bias test) or with
    every other category (``t2ibias generate``). Blocks are the unit of generation, of caching (the
    block's length and the image's slot are in each key), of locking between processes, and of
    sharding over ranks.

    Example:
        >>> from pytest_t2ibias.generate import ImageRequest
        >>> plan = [ImageRequest(c, 0, i, "a photo", i) for c in ("doctor", "nature") for i in range(3)]
        >>> [[(r.category, r.image_index) for r in block] for block in plan_blocks(plan, 2)]
        [[('doctor', 0), ('doctor', 1)], [('doctor', 2)], [('nature', 0), ('nature', 1)], [('nature', 2)]]
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"`block_size` must be an integer >= 1, got {block_size!r}")
    blocks: list[list[ImageRequest]] = []
    for request in requests:
        if blocks and len(blocks[-1]) < block_size and blocks[-1][-1].category == request.category:
            blocks[-1].append(request)
        else:
            blocks.append([request])
    return blocks


def cached_paths(
    requests: Sequence[ImageRequest], fingerprint: str, params: dict[str, Any], batch_size: int, cache: ImageCache
) -> dict[int, Path | None]:
    """Seed -> the cached image that the model ``fingerprint`` drew for each request of a plan (blocks of
    ``batch_size``, as :func:`generate_images` makes them), or None when the cache no longer holds it.

    How a report finds the baseline model's images beside the candidate's, without generating anything.
    """
    out: dict[int, Path | None] = {}
    for block in plan_blocks(requests, batch_size):
        for slot, request in enumerate(block):
            png = cache.png_path(cache_key(fingerprint, request.prompt, request.seed, params, len(block), slot))
            out[request.seed] = png if png.is_file() else None
    return out


@dataclass(eq=False)
class _Block:
    requests: list[ImageRequest]
    keys: list[str]
    images: list[Image.Image | None]
    paths: list[Path | None]
    new: list[bool]
    generated: bool = False

    @property
    def complete(self) -> bool:
        return all(image is not None for image in self.images)


def generate_images(
    requests: Sequence[ImageRequest],
    generator: ImageGenerator,
    cache: ImageCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Images for ``requests`` (a plan, in plan order): cache hits are read, the blocks of the plan
    (:func:`plan_blocks` with ``generator.batch_size``) that miss any image are generated whole.

    ``progress(k)`` is called after k more images are done.
    """
    return generate_blocks(plan_blocks(requests, generator.batch_size), generator, cache, progress)


def generate_blocks(
    blocks: Sequence[Sequence[ImageRequest]],
    generator: ImageGenerator,
    cache: ImageCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Images for ``blocks``, each block one ``generate`` call (a share of :func:`plan_blocks`'s blocks,
    for instance one rank's): the result lists them in block order.

    With a cache, a block whose images are all cached is read without waiting for anything. A block
    with a miss is generated under its inter-process lock: a lock another process holds is skipped for
    now and retried once the free blocks are done, then waited for; after taking it, the cache is read
    again (the other process may have filled it), and only a block still missing an image is generated.
    Images already cached keep their files; the regenerated copies (identical: same batch) are dropped.
    """
    params = generator.params
    work: list[_Block] = []
    for requests in blocks:
        if not requests:
            continue
        if len(requests) > generator.batch_size:
            raise ValueError(
                f"a block of {len(requests)} images exceeds the generator's batch size {generator.batch_size}"
            )
        n = len(requests)
        keys = [cache_key(generator.fingerprint, r.prompt, r.seed, params, n, slot) for slot, r in enumerate(requests)]
        work.append(_Block(list(requests), keys, [None] * n, [None] * n, [False] * n))

    pending: list[_Block] = []
    for block in work:
        if cache is not None:
            _read(block, cache, expected_size(params))
        if block.complete:
            if progress:
                progress(len(block.requests))
        else:
            pending.append(block)

    if cache is None:
        for block in pending:
            _generate(block, generator, params, None)
            if progress:
                progress(len(block.requests))
    elif pending:
        cache.clean_stale_temp_files_once()
        _fill_locked(pending, generator, params, cache, progress)

    result = GenerationResult()
    for block in work:
        for request, key, image, path, new in zip(
            block.requests, block.keys, block.images, block.paths, block.new, strict=True
        ):
            assert image is not None
            result.images.append(GeneratedImage(request, key, image, path, cached=not new))
            result.new += new
            result.cached += not new
    result.generated = sum(len(block.requests) for block in work if block.generated)
    return result


def _fill_locked(
    pending: list[_Block],
    generator: ImageGenerator,
    params: dict[str, Any],
    cache: ImageCache,
    progress: Callable[[int], None] | None,
) -> None:
    waiting = list(pending)
    while waiting:
        taken = []
        for block in waiting:
            lock = cache.lock(block.keys)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # another process is making it: do the free blocks first
            try:
                cache.note_holder(block.keys)
                _complete(block, generator, params, cache)
            finally:
                cache.drop_holder(block.keys)
                lock.release()
            taken.append(block)
            if progress:
                progress(len(block.requests))
        waiting = [block for block in waiting if block not in taken]
        if waiting and not taken:
            # every remaining block is being made by another process: wait for the first one
            block = waiting.pop(0)
            lock = cache.lock(block.keys)
            if not _wait(lock, block.keys, cache):
                warnings.warn(
                    f"t2ibias cache: waited {cache.lock_timeout:g} s for another process to generate a batch "
                    f"({cache.lock_path(block.keys)}); generating it here too",
                    LockWaitWarning,
                    stacklevel=3,
                )
                _complete(block, generator, params, cache)
            else:
                try:
                    cache.note_holder(block.keys)
                    _complete(block, generator, params, cache)
                finally:
                    cache.drop_holder(block.keys)
                    lock.release()
            if progress:
                progress(len(block.requests))


def _wait(lock: FileLock, keys: Sequence[str], cache: ImageCache) -> bool:
    """Wait for another process's batch lock: whether it was taken within ``cache.lock_timeout``.

    Names the lock and its holder on stderr after a few seconds (:func:`acquire_reporting`). The time
    counts against ``cache.max_lock_wait``, the run's total: past it, :class:`LockTimeoutError`.
    """
    budget = None if cache.max_lock_wait is None else max(0.0, cache.max_lock_wait - cache.lock_waited_s)
    limit = cache.lock_timeout if budget is None else min(cache.lock_timeout, budget)
    started = time.monotonic()
    try:
        if acquire_reporting(lock, cache.lock_path(keys), limit):
            return True
    finally:
        cache.lock_waited_s += time.monotonic() - started
    if cache.max_lock_wait is not None and budget is not None and budget <= cache.lock_timeout:
        raise lock_timeout_error("batch lock", cache.lock_path(keys), cache.lock_waited_s, cache.max_lock_wait)
    return False


def _read(block: _Block, cache: ImageCache, size: tuple[int, int] | None) -> None:
    for index, key in enumerate(block.keys):
        if block.images[index] is None:
            image = cache.load(key, size)
            if image is not None:
                block.images[index] = image
                block.paths[index] = cache.png_path(key)


def _complete(block: _Block, generator: ImageGenerator, params: dict[str, Any], cache: ImageCache) -> None:
    """Under the block's lock: read again, and generate the block only if it still misses an image."""
    _read(block, cache, expected_size(params))
    if not block.complete:
        _generate(block, generator, params, cache)


def _generate(block: _Block, generator: ImageGenerator, params: dict[str, Any], cache: ImageCache | None) -> None:
    """Generate the whole block; store (and use) the images that were missing, keep the cached ones."""
    requests = block.requests
    images = generator.generate([r.prompt for r in requests], [r.seed for r in requests])
    if len(images) != len(requests):
        raise RuntimeError(f"generator {generator.fingerprint} returned {len(images)} images for {len(requests)}")
    # every image is checked before any is stored: a bad output must not poison the cache for reruns
    images = check_generated(images, generator.fingerprint, params, requests)
    block.generated = True
    stored: dict[str, Path | None] = {}
    for slot, (request, key, image) in enumerate(zip(requests, block.keys, images, strict=True)):
        if block.images[slot] is not None:
            continue  # cached: keep the file (the regenerated copy is the same image)
        if key not in stored:
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
                    "batch_size": len(requests),
                    "batch_slot": slot,
                }
                path = cache.store(key, image, meta)
            stored[key] = path
        block.images[slot] = image
        block.paths[slot] = stored[key]
        block.new[slot] = True
