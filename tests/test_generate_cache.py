"""The content-addressed image cache, the fixed generation blocks, the inter-process block locks, the
stale temp-file cleanup, and the model fingerprints that enter the cache keys.

Most tests use a ``CallableGenerator`` whose pixels are a pure function of (prompt, seed), counting its
calls; one end-to-end test runs the tiny diffusers model. Two real processes fill one cache folder at
once to check the atomic writes and that each image is generated once (tests/test_generate_concurrency.py
runs three processes of the tiny model and the kill -9 runs).
"""

from __future__ import annotations

import doctest
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from filelock import FileLock, Timeout
from PIL import Image

from pytest_t2ibias.errors import CacheCorruptionWarning, LockWaitWarning
from pytest_t2ibias.generate import (
    CallableGenerator,
    ImageCache,
    ImageRequest,
    cache_key,
    generate_blocks,
    generate_images,
    image_seed,
    plan_blocks,
    plan_requests,
)
from pytest_t2ibias.generate import cache as cache_module
from pytest_t2ibias.generate import fingerprint as fingerprint_module
from pytest_t2ibias.generate import stage as stage_module
from pytest_t2ibias.generate.fingerprint import hub_fingerprint, local_fingerprint
from pytest_t2ibias.suites.schema import Suite

PROMPT = "A doctor performing surgery in a hospital."
EVIL_PROMPT = "../../etc/passwd/ a cat / on a mat\\..\\x"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def noise_image(prompt: str, seed: int) -> Image.Image:
    """16x16 RGB noise that depends on the prompt and the seed alone."""
    salt = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
    rng = np.random.default_rng([seed, salt])
    return Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))


class Counting:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, prompt: str, seed: int) -> Image.Image:
        self.calls.append((prompt, seed))
        return noise_image(prompt, seed)


def make_generator(fn: Counting, params: dict[str, Any] | None = None, batch_size: int = 2) -> CallableGenerator:
    return CallableGenerator(fn, name="noise", params=params or {"size": 16}, batch_size=batch_size)


def requests(n: int = 4, prompt: str = PROMPT) -> list[ImageRequest]:
    return [ImageRequest("doctor", 0, i, prompt, image_seed(0, "doctor", 0, i)) for i in range(n)]


def files_under(root: Path) -> set[str]:
    """The cache entries' files (and any debris), without the block lock files under ``locks/`` and the
    ``.gitignore`` a cache folder gets when the cache creates it (tests/test_cache_gitignore.py)."""
    names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return {name for name in names if not name.startswith("locks/") and name != ".gitignore"}


def lock_files(root: Path) -> set[str]:
    return {p.name for p in (root / "locks").glob("*")} if (root / "locks").is_dir() else set()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every entry file's bytes (the lock files are empty and not part of the content)."""
    return {name: (root / name).read_bytes() for name in sorted(files_under(root))}


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.fixture
def no_corruption_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        yield


class TestCacheKey:
    BASE: tuple[str, str, int, dict[str, Any]] = ("tiny:abc", PROMPT, 7, {"steps": 4, "guidance": 7.5})

    def test_deterministic_hex(self) -> None:
        key = cache_key(*self.BASE)
        assert key == cache_key(*self.BASE)
        assert len(key) == 64
        assert int(key, 16) >= 0

    def test_param_order_does_not_matter(self) -> None:
        assert cache_key("tiny:abc", PROMPT, 7, {"guidance": 7.5, "steps": 4}) == cache_key(*self.BASE)

    @pytest.mark.parametrize(
        "changed",
        [
            ("tiny:abd", PROMPT, 7, {"steps": 4, "guidance": 7.5}),
            ("tiny:abc", PROMPT + " ", 7, {"steps": 4, "guidance": 7.5}),
            ("tiny:abc", PROMPT, 8, {"steps": 4, "guidance": 7.5}),
            ("tiny:abc", PROMPT, 7, {"steps": 5, "guidance": 7.5}),
            ("tiny:abc", PROMPT, 7, {"steps": 4, "guidance": 7.0}),
            ("tiny:abc", PROMPT, 7, {"steps": 4, "guidance": 7.5, "scheduler": "Euler"}),
        ],
        ids=["fingerprint", "prompt", "seed", "steps", "guidance", "extra-param"],
    )
    def test_every_input_changes_the_key(self, changed: tuple[str, str, int, dict[str, Any]]) -> None:
        assert cache_key(*changed) != cache_key(*self.BASE)

    def test_the_batch_length_and_slot_change_the_key(self) -> None:
        keys = {cache_key(*self.BASE, size, slot) for size, slot in [(None, None), (4, 0), (4, 3), (8, 3), (1, 0)]}
        assert len(keys) == 5
        assert cache_key(*self.BASE, 4, 3) == cache_key(*self.BASE, batch_size=4, batch_slot=3)


class TestHitAndMiss:
    def test_first_run_new_second_run_cached(self, tmp_path: Path) -> None:
        fn = Counting()
        gen = make_generator(fn)
        cache = ImageCache(tmp_path)
        reqs = requests(5)
        progress: list[int] = []

        first = generate_images(reqs, gen, cache, progress=progress.append)
        assert (first.new, first.cached) == (5, 0)
        assert fn.calls == [(r.prompt, r.seed) for r in reqs]
        assert sum(progress) == 5
        assert not any(g.cached for g in first.images)

        second = generate_images(reqs, gen, cache)
        assert (second.new, second.cached) == (0, 5)
        assert len(fn.calls) == 5, "a rerun called the generator"
        assert all(g.cached for g in second.images)
        for a, b, r in zip(first.images, second.images, reqs, strict=True):
            assert a.request == b.request == r
            assert a.key == b.key
            assert a.path == b.path == cache.png_path(a.key)
            assert np.array_equal(as_array(a.image), as_array(b.image))
            assert np.array_equal(as_array(b.image), as_array(noise_image(r.prompt, r.seed)))

    def test_a_block_with_a_miss_is_generated_whole(self, tmp_path: Path) -> None:
        fn = Counting()
        gen = make_generator(fn, batch_size=3)
        cache = ImageCache(tmp_path)
        reqs = requests(9)
        first = generate_images(reqs, gen, cache)
        assert (first.new, first.cached, first.generated) == (9, 0, 9)
        missing = first.images[4]
        assert missing.path is not None
        missing.path.unlink()
        fn.calls.clear()
        result = generate_images(reqs, gen, cache)
        # only block [3, 4, 5] misses an image; it is generated whole, the other blocks are read
        assert fn.calls == [(r.prompt, r.seed) for r in reqs[3:6]]
        assert (result.new, result.cached, result.generated) == (1, 8, 3)
        # results come back in request order, cached or not
        assert [g.request.image_index for g in result.images] == list(range(9))
        assert [g.cached for g in result.images] == [True] * 4 + [False] + [True] * 4
        assert missing.path.exists()

    def test_changed_params_do_not_reuse_images(self, tmp_path: Path) -> None:
        fn = Counting()
        cache = ImageCache(tmp_path)
        generate_images(requests(2), make_generator(fn, {"size": 16}), cache)
        result = generate_images(requests(2), make_generator(fn, {"size": 16, "version": 2}), cache)
        assert (result.new, result.cached) == (2, 0)
        assert len(fn.calls) == 4

    def test_changed_fingerprint_does_not_reuse_images(self, tmp_path: Path) -> None:
        fn = Counting()
        cache = ImageCache(tmp_path)
        generate_images(requests(2), CallableGenerator(fn, name="model-a", params={}), cache)
        result = generate_images(requests(2), CallableGenerator(fn, name="model-b", params={}), cache)
        assert (result.new, result.cached) == (2, 0)

    def test_changed_seed_or_prompt_does_not_reuse_images(self, tmp_path: Path) -> None:
        fn = Counting()
        gen = make_generator(fn)
        cache = ImageCache(tmp_path)
        generate_images(requests(1), gen, cache)
        reseeded = [ImageRequest("doctor", 0, 0, PROMPT, 12345)]
        reworded = [ImageRequest("doctor", 0, 0, PROMPT.lower(), requests(1)[0].seed)]
        assert generate_images(reseeded, gen, cache).new == 1
        assert generate_images(reworded, gen, cache).new == 1

    def test_keys_follow_fingerprint_and_params(self, tmp_path: Path) -> None:
        gen = make_generator(Counting())
        result = generate_images(requests(2), gen, ImageCache(tmp_path))
        for slot, g in enumerate(result.images):
            # one block of two images: the batch's length and the image's slot in it are part of the key
            assert g.key == cache_key(gen.fingerprint, g.request.prompt, g.request.seed, gen.params, 2, slot)
            assert g.key != cache_key(gen.fingerprint, g.request.prompt, g.request.seed, gen.params, 1, 0)

    def test_no_cache_writes_nothing(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        fn = Counting()
        gen = make_generator(fn)
        first = generate_images(requests(3), gen, None)
        second = generate_images(requests(3), gen, cache=None)
        assert (first.new, second.new) == (3, 3)
        assert len(fn.calls) == 6
        assert all(g.path is None and not g.cached for g in first.images + second.images)
        assert list(tmp_path.iterdir()) == []

    def test_wrong_number_of_images_is_an_error(self, tmp_path: Path) -> None:
        class Short:
            fingerprint = "short:1"
            batch_size = 4
            params: ClassVar[dict[str, Any]] = {}

            def generate(self, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
                return [noise_image(p, s) for p, s in zip(prompts, seeds, strict=True)][:-1]

        with pytest.raises(RuntimeError, match=r"generator short:1 returned 2 images for 3"):
            generate_images(requests(3), Short(), ImageCache(tmp_path))


class TestLayout:
    def test_png_and_sidecar_per_key(self, tmp_path: Path) -> None:
        result = generate_images(requests(3), make_generator(Counting()), ImageCache(tmp_path))
        expected = set()
        for g in result.images:
            expected |= {f"{g.key[:2]}/{g.key}.png", f"{g.key[:2]}/{g.key}.json"}
            assert g.path == tmp_path / g.key[:2] / f"{g.key}.png"
        assert files_under(tmp_path) == expected
        assert len(lock_files(tmp_path)) == 2  # one per generated block (batch size 2: [0, 1], [2])
        assert all(
            name.endswith(".lock") and (tmp_path / "locks" / name).stat().st_size == 0 for name in lock_files(tmp_path)
        )

    def test_prompt_text_never_becomes_a_path(self, tmp_path: Path) -> None:
        root = tmp_path / "cache"
        result = generate_images(requests(2, EVIL_PROMPT), make_generator(Counting()), ImageCache(root))
        assert [p for p in tmp_path.iterdir()] == [root]
        for path in root.rglob("*"):
            relative = path.relative_to(root).as_posix()
            assert ".." not in relative and "passwd" not in relative and "cat" not in relative
            assert path.resolve().is_relative_to(root.resolve())
        sidecar = json.loads((root / result.images[0].key[:2] / f"{result.images[0].key}.json").read_text())
        assert sidecar["prompt"] == EVIL_PROMPT

    def test_sidecar_records_the_inputs(self, tmp_path: Path) -> None:
        gen = make_generator(Counting(), {"size": 16, "steps": 3})
        result = generate_images(requests(2), gen, ImageCache(tmp_path))
        g = result.images[1]
        assert g.path is not None
        sidecar = json.loads(g.path.with_suffix(".json").read_text(encoding="utf-8"))
        assert sidecar["key"] == g.key
        assert sidecar["prompt"] == PROMPT
        assert sidecar["seed"] == g.request.seed
        assert sidecar["params"] == {"size": 16, "steps": 3}
        assert sidecar["model"] == gen.fingerprint
        assert (sidecar["category"], sidecar["prompt_index"], sidecar["image_index"]) == ("doctor", 0, 1)
        assert (sidecar["batch_size"], sidecar["batch_slot"]) == (2, 1)
        assert sidecar["png_sha256"] == hashlib.sha256(g.path.read_bytes()).hexdigest()

    def test_png_is_lossless(self, tmp_path: Path) -> None:
        result = generate_images(requests(1), make_generator(Counting()), ImageCache(tmp_path))
        g = result.images[0]
        assert g.path is not None
        with Image.open(g.path) as stored:
            assert stored.format == "PNG"
            assert np.array_equal(as_array(stored), as_array(noise_image(PROMPT, g.request.seed)))


def _truncate(png: Path, meta: Path, other: Path) -> None:
    data = png.read_bytes()
    png.write_bytes(data[: len(data) // 2])


def _empty(png: Path, meta: Path, other: Path) -> None:
    png.write_bytes(b"")


def _flip_byte(png: Path, meta: Path, other: Path) -> None:
    data = bytearray(png.read_bytes())
    data[len(data) // 2] ^= 0xFF
    png.write_bytes(bytes(data))


def _other_valid_png(png: Path, meta: Path, other: Path) -> None:
    buffer = io.BytesIO()
    noise_image("something else", 1).save(buffer, format="PNG")
    png.write_bytes(buffer.getvalue())


def _delete_png(png: Path, meta: Path, other: Path) -> None:
    png.unlink()


def _delete_sidecar(png: Path, meta: Path, other: Path) -> None:
    meta.unlink()


def _garbage_sidecar(png: Path, meta: Path, other: Path) -> None:
    meta.write_bytes(b"{not json \xff")


def _list_sidecar(png: Path, meta: Path, other: Path) -> None:
    meta.write_text("[]")


def _foreign_sidecar(png: Path, meta: Path, other: Path) -> None:
    shutil.copyfile(other, meta)


CORRUPTIONS = [
    (_truncate, "does not match the hash"),
    (_empty, "does not match the hash"),
    (_flip_byte, "does not match the hash"),
    (_other_valid_png, "does not match the hash"),
    (_delete_sidecar, "sidecar JSON missing"),
    (_garbage_sidecar, "sidecar JSON unreadable"),
    (_list_sidecar, "does not belong to this entry"),
    (_foreign_sidecar, "does not belong to this entry"),
]


class TestCorruption:
    @pytest.mark.parametrize(("corrupt", "problem"), CORRUPTIONS, ids=[c.__name__.strip("_") for c, _ in CORRUPTIONS])
    def test_detected_reported_and_regenerated(self, tmp_path: Path, corrupt: Any, problem: str) -> None:
        fn = Counting()
        gen = make_generator(fn)
        cache = ImageCache(tmp_path)
        reqs = requests(3)
        first = generate_images(reqs, gen, cache)
        bad, other = first.images[1], first.images[2]
        assert bad.path is not None and other.path is not None
        good_png = bad.path.read_bytes()
        corrupt(bad.path, bad.path.with_suffix(".json"), other.path.with_suffix(".json"))
        fn.calls.clear()

        with pytest.warns(CacheCorruptionWarning, match=rf"{bad.key}\.png: .*{problem}.*; regenerating"):
            second = generate_images(reqs, gen, cache)

        assert (second.new, second.cached) == (1, 2)
        # the corrupt image's block (batch size 2: images 0 and 1) is generated whole
        assert fn.calls == [(r.prompt, r.seed) for r in reqs[:2]]
        assert np.array_equal(as_array(second.images[1].image), as_array(bad.image))
        assert bad.path.read_bytes() == good_png
        assert len(files_under(tmp_path)) == 6

    @pytest.mark.usefixtures("no_corruption_warnings")
    def test_sidecar_without_png_is_a_silent_miss(self, tmp_path: Path) -> None:
        """The writer puts the sidecar down first, so a sidecar alone may be a store in progress in
        another process: regenerate without a warning, and never delete the other writer's files."""
        fn = Counting()
        gen = make_generator(fn)
        cache = ImageCache(tmp_path)
        first = generate_images(requests(3), gen, cache)
        assert first.images[1].path is not None
        _delete_png(first.images[1].path, Path(), Path())
        fn.calls.clear()
        second = generate_images(requests(3), gen, cache)
        assert (second.new, second.cached) == (1, 2)
        assert fn.calls == [(r.prompt, r.seed) for r in requests(3)[:2]]  # its block, whole
        assert len(files_under(tmp_path)) == 6

    @pytest.mark.usefixtures("no_corruption_warnings")
    def test_regenerated_entry_is_valid_again(self, tmp_path: Path) -> None:
        fn = Counting()
        gen = make_generator(fn)
        cache = ImageCache(tmp_path)
        first = generate_images(requests(2), gen, cache)
        assert first.images[0].path is not None
        _truncate(first.images[0].path, Path(), Path())
        with pytest.warns(CacheCorruptionWarning):
            generate_images(requests(2), gen, cache)
        third = generate_images(requests(2), gen, cache)
        assert (third.new, third.cached) == (0, 2)

    def test_load_of_an_absent_key_is_silent(self, tmp_path: Path, no_corruption_warnings: None) -> None:
        assert ImageCache(tmp_path).load("ab" + "0" * 62) is None
        assert ImageCache(tmp_path / "not-created-yet").load("cd" + "1" * 62) is None


class TestAtomicWrites:
    def test_no_temp_files_left(self, tmp_path: Path) -> None:
        cache = ImageCache(tmp_path)
        generate_images(requests(6), make_generator(Counting()), cache)
        # overwrite every entry once more: replacing existing files must not leave debris either
        for r in requests(6):
            key = cache_key("noise", r.prompt, r.seed, {})
            cache.store(key, noise_image(r.prompt, r.seed), {"prompt": r.prompt})
            cache.store(key, noise_image(r.prompt, r.seed), {"prompt": r.prompt})
        assert not [name for name in files_under(tmp_path) if name.endswith(".tmp") or "/." in name]
        assert len(files_under(tmp_path)) == 24

    @pytest.mark.parametrize("failing", ["write", "replace"])
    def test_failed_write_keeps_the_old_entry(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, no_corruption_warnings: None
    ) -> None:
        """A write that dies half-way (disk full) or a failed rename leaves the previous entry untouched."""
        cache = ImageCache(tmp_path)
        key = cache_key("noise", PROMPT, 1, {})
        png = cache.store(key, noise_image(PROMPT, 1), {"prompt": PROMPT})
        before = {name: (tmp_path / name).read_bytes() for name in files_under(tmp_path)}
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, handle: Any) -> None:
                self.handle = handle

            def __enter__(self) -> HalfWriter:
                return self

            def __exit__(self, *exc: object) -> None:
                self.handle.close()

            def write(self, data: bytes) -> None:
                self.handle.write(data[: len(data) // 2])
                raise OSError(28, "No space left on device")

            def __getattr__(self, name: str) -> Any:
                return getattr(self.handle, name)

        def broken_replace(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patch:
            if failing == "write":
                patch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: HalfWriter(real_fdopen(fd, mode, *a, **k)))
            else:
                patch.setattr(os, "replace", broken_replace)
            with pytest.raises(OSError, match="No space left"):
                cache.store(key, noise_image("a different image", 2), {"prompt": PROMPT})

        assert {name: (tmp_path / name).read_bytes() for name in files_under(tmp_path)} == before
        loaded = cache.load(key)
        assert loaded is not None
        assert np.array_equal(as_array(loaded), as_array(noise_image(PROMPT, 1)))
        assert png.exists()


class Recording:
    """A generator that records each ``generate`` call's seeds: one call is one batch."""

    def __init__(self, batch_size: int) -> None:
        self.fingerprint = "callable:noise-recording"
        self.batch_size = batch_size
        self.batches: list[list[int]] = []

    @property
    def params(self) -> dict[str, Any]:
        return {"size": 16}

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        self.batches.append(list(seeds))
        return [noise_image(p, s) for p, s in zip(prompts, seeds, strict=True)]


def _keys_of(block: Sequence[ImageRequest], gen: Any) -> list[str]:
    return [cache_key(gen.fingerprint, r.prompt, r.seed, gen.params, len(block), i) for i, r in enumerate(block)]


def test_stage_docstring_examples() -> None:
    result = doctest.testmod(stage_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


class TestPlanBlocks:
    def test_fixed_size_runs_within_a_category(self, suite: Suite) -> None:
        plan = plan_requests(suite, 5)
        blocks = plan_blocks(plan, 4)
        assert [r for block in blocks for r in block] == plan  # plan order, nothing lost or repeated
        for category in suite.categories:
            mine = [block for block in blocks if block[0].category == category]
            assert all(r.category == category for block in mine for r in block)
            # every block of a category is full except its last
            assert all(len(block) == 4 for block in mine[:-1])
            assert 1 <= len(mine[-1]) <= 4
            assert sum(len(block) for block in mine) == 5 * len(suite.categories[category].prompts)

    @pytest.mark.parametrize("size", [1, 3, 8, 1000])
    def test_a_category_planned_alone_has_its_blocks_in_the_full_plan(self, suite: Suite, size: int) -> None:
        """pytest plans one category per bias test, ``t2ibias generate`` the whole suite: same batches."""
        full = plan_blocks(plan_requests(suite, 7), size)
        for category in suite.categories:
            alone = plan_blocks(plan_requests(suite, 7, [category]), size)
            assert alone == [block for block in full if block[0].category == category]

    @pytest.mark.parametrize("size", [0, -1, True, 1.5, "4"])
    def test_block_size_must_be_a_positive_integer(self, size: Any) -> None:
        with pytest.raises(ValueError, match=r"`block_size` must be an integer >= 1"):
            plan_blocks(requests(2), size)

    def test_empty_plan(self, tmp_path: Path) -> None:
        assert plan_blocks([], 4) == []
        result = generate_images([], make_generator(Counting()), ImageCache(tmp_path))
        assert (result.images, result.new, result.cached, result.generated) == ([], 0, 0, 0)


def _fill_partially(cache_root: Path, cold: Path, keep: Any) -> None:
    """Copy the entries of the cold cache whose sidecar satisfies ``keep`` into ``cache_root``."""
    for meta in sorted(cold.rglob("*.json")):
        if meta.parent.name == "locks" or not keep(json.loads(meta.read_text())):
            continue
        for source in (meta, meta.with_suffix(".png")):
            target = cache_root / source.relative_to(cold)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


FILLINGS = {
    "empty": lambda s: False,
    "every-third": lambda s: (s["prompt_index"] * 7 + s["image_index"]) % 3 == 0,
    "one-image-per-block": lambda s: s["batch_slot"] == 0,
    "all-but-one": lambda s: not (s["category"] == "doctor" and s["image_index"] == 5),
}


class TestBatchesFollowThePlan:
    """Issue 10 item 12: an image is generated beside the same neighbours whatever the cache holds."""

    @pytest.mark.parametrize("filling", list(FILLINGS))
    def test_batches_are_the_plan_blocks_whatever_the_cache_holds(
        self, suite: Suite, tmp_path: Path, filling: str
    ) -> None:
        plan = plan_requests(suite, 7, ["doctor", "beauty"])
        cold_gen = Recording(batch_size=3)
        generate_images(plan, cold_gen, ImageCache(tmp_path / "cold"))
        blocks = [[r.seed for r in block] for block in plan_blocks(plan, 3)]
        assert cold_gen.batches == blocks

        root = tmp_path / "partial"
        _fill_partially(root, tmp_path / "cold", FILLINGS[filling])
        cached_before = {p.stem for p in root.rglob("*.png")}
        gen = Recording(batch_size=3)
        result = generate_images(plan, gen, ImageCache(root))

        # every batch is a whole block of the plan: exactly the blocks that missed an image
        expected = [
            seeds
            for seeds, block in zip(blocks, plan_blocks(plan, 3), strict=True)
            if not set(_keys_of(block, gen)) <= cached_before
        ]
        assert gen.batches == expected
        assert result.generated == sum(len(seeds) for seeds in expected)
        assert (result.new, result.cached) == (len(plan) - len(cached_before), len(cached_before))
        # and the cache ends byte for byte as a cold run left it
        assert snapshot(root) == snapshot(tmp_path / "cold")

    def test_one_category_first_then_the_whole_plan(self, suite: Suite, tmp_path: Path) -> None:
        """A pytest bias test (one category), then ``t2ibias generate`` (every category)."""
        full = plan_requests(suite, 5)
        generate_images(full, Recording(batch_size=4), ImageCache(tmp_path / "cold"))
        gen = Recording(batch_size=4)
        generate_images(plan_requests(suite, 5, ["nature"]), gen, ImageCache(tmp_path / "warm"))
        first = len(gen.batches)
        result = generate_images(full, gen, ImageCache(tmp_path / "warm"))
        nature = [r for r in full if r.category == "nature"]
        assert result.cached == len(nature)
        assert all(s not in {r.seed for r in nature} for batch in gen.batches[first:] for s in batch)
        assert snapshot(tmp_path / "warm") == snapshot(tmp_path / "cold")

    def test_cached_files_of_a_regenerated_block_are_kept(self, tmp_path: Path) -> None:
        gen = make_generator(Counting(), batch_size=4)
        cache = ImageCache(tmp_path)
        first = generate_images(requests(4), gen, cache)
        paths = [g.path for g in first.images]
        assert all(p is not None for p in paths)
        stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths if p is not None}
        assert paths[2] is not None
        paths[2].unlink()
        second = generate_images(requests(4), gen, cache)
        assert [g.cached for g in second.images] == [True, True, False, True]
        for path, stamp in stamps.items():
            if path != paths[2]:
                assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, f"{path.name} was rewritten"

    def test_the_key_holds_the_batch_length_and_slot(self, tmp_path: Path) -> None:
        """The same seed made in a batch of another length (or in another slot) is another entry: its
        pixels may differ by float rounding."""
        cache = ImageCache(tmp_path)
        fours = generate_images(requests(4), make_generator(Counting(), batch_size=4), cache)
        twos = generate_images(requests(4), make_generator(Counting(), batch_size=2), cache)
        assert (twos.new, twos.cached) == (4, 0)
        assert {g.key for g in fours.images}.isdisjoint(g.key for g in twos.images)
        again = generate_images(requests(4), make_generator(Counting(), batch_size=2), cache)
        assert (again.new, again.cached) == (0, 4)
        metas = [json.loads(g.path.with_suffix(".json").read_text()) for g in twos.images if g.path]
        assert [(m["batch_size"], m["batch_slot"]) for m in metas] == [(2, 0), (2, 1), (2, 0), (2, 1)]

    def test_blocks_generated_in_shares_fill_the_same_cache(self, suite: Suite, tmp_path: Path) -> None:
        """What a rank does with its share of the blocks (issue 13): the same entries as one process."""
        plan = plan_requests(suite, 6, ["doctor", "animal"])
        gen = make_generator(Counting(), batch_size=4)
        generate_images(plan, gen, ImageCache(tmp_path / "one"))
        blocks = plan_blocks(plan, gen.batch_size)
        shares = [generate_blocks(blocks[rank::2], gen, ImageCache(tmp_path / "two")) for rank in (0, 1)]
        assert [g.request for g in shares[0].images] == [r for block in blocks[0::2] for r in block]
        assert sum(s.new for s in shares) == len(plan)
        assert snapshot(tmp_path / "two") == snapshot(tmp_path / "one")

    def test_a_block_longer_than_the_batch_size_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"a block of 3 images exceeds the generator's batch size 2"):
            generate_blocks([requests(3)], make_generator(Counting(), batch_size=2), ImageCache(tmp_path))


def _make_stale(path: Path, age_s: float = 2 * 3600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a png")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


class TestStaleTempFiles:
    """Issue 10 item 13: a writer killed mid-write leaves ``.<name>.<random>.tmp``; stale ones go."""

    def test_stale_removed_fresh_and_foreign_kept(self, tmp_path: Path) -> None:
        cache = ImageCache(tmp_path)
        result = generate_images(requests(2), make_generator(Counting()), cache)
        shard = tmp_path / result.images[0].key[:2]
        stale = _make_stale(shard / f".{result.images[0].key}.png.k3j2h1.tmp")
        stale_json = _make_stale(shard / f".{result.images[0].key}.json.a8b7c6.tmp")
        fresh = _make_stale(shard / f".{result.images[1].key}.png.q9w8e7.tmp", age_s=60)
        # a process killed while recording itself as a lock's holder
        holder = _make_stale(tmp_path / "locks" / ".2d8132e71c48443c9ba3676c713aa54a.holder.ndblmv1_.tmp")
        kept = [
            fresh,
            _make_stale(shard / "notes.tmp"),  # not a temp file of ours (no leading dot)
            _make_stale(tmp_path / ".stray.tmp"),  # not in a shard folder
            _make_stale(tmp_path / "locks" / ".x.tmp"),
            _make_stale(tmp_path / "xyz" / ".a.png.b.tmp"),  # not a two-hex-digit shard
        ]
        before = snapshot(tmp_path)
        assert cache.clean_stale_temp_files() == 3
        assert not stale.exists() and not stale_json.exists() and not holder.exists()
        assert all(path.exists() for path in kept)
        gone = {p.relative_to(tmp_path).as_posix() for p in (stale, stale_json, holder)}
        assert snapshot(tmp_path) == {name: data for name, data in before.items() if name not in gone}
        assert cache.load(result.images[0].key) is not None

    def test_cleaned_on_the_first_miss_only(self, tmp_path: Path) -> None:
        gen = make_generator(Counting(), batch_size=1)
        cache = ImageCache(tmp_path)
        generate_images(requests(1), gen, cache)
        stale = _make_stale(tmp_path / "ab" / ".ab12.png.x.tmp")
        generate_images(requests(1), gen, ImageCache(tmp_path))  # all cached: no scan
        assert stale.exists()
        generate_images(requests(2), gen, cache)  # this object's first miss was the first run
        assert stale.exists()
        generate_images(requests(3), gen, ImageCache(tmp_path))  # a new cache object with a miss
        assert not stale.exists()

    def test_no_cache_folder_yet(self, tmp_path: Path) -> None:
        assert ImageCache(tmp_path / "not-created").clean_stale_temp_files() == 0
        assert not (tmp_path / "not-created").exists()


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pytest_t2ibias.generate import ImageCache
    lock = ImageCache(sys.argv[1]).lock(sys.argv[2:])
    lock.acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


class TestBlockLocks:
    """Issue 10 item 11: the per-block inter-process lock."""

    def test_a_lock_left_by_a_killed_holder_is_taken_at_once(self, tmp_path: Path) -> None:
        keys = ["a" * 64, "b" * 64]
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, str(tmp_path), *keys], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            lock = ImageCache(tmp_path).lock(keys)
            with pytest.raises(Timeout):
                lock.acquire(timeout=0)  # held by a live process
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        assert ImageCache(tmp_path).lock_path(keys).exists(), "the killed holder's lock file is left behind"
        started = time.monotonic()
        lock.acquire(timeout=0)  # ...and taken at once: the OS lock died with its holder
        lock.release()
        assert time.monotonic() - started < 1

    def test_a_held_block_is_skipped_then_read_once_its_holder_stored_it(self, tmp_path: Path) -> None:
        fn = Counting()
        gen = make_generator(fn, batch_size=3)
        cache = ImageCache(tmp_path)
        reqs = requests(9)
        first_block = plan_blocks(reqs, 3)[0]
        other_process = cache.lock(_keys_of(first_block, gen))
        other_process.acquire()
        outcome: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: outcome.update(result=generate_images(reqs, gen, ImageCache(tmp_path)))
        )
        worker.start()
        deadline = time.monotonic() + 60
        while len(fn.calls) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert worker.is_alive(), "the worker did not wait for the held block"
        # the free blocks were done first, and the held one was not touched
        assert fn.calls == [(r.prompt, r.seed) for r in reqs[3:]]
        for slot, (request, key) in enumerate(zip(first_block, _keys_of(first_block, gen), strict=True)):
            cache.store(key, noise_image(request.prompt, request.seed), {"batch_size": 3, "batch_slot": slot})
        other_process.release()
        worker.join(timeout=60)
        result = outcome["result"]
        assert len(fn.calls) == 6, "the block stored by the lock's holder was generated again"
        assert (result.new, result.cached, result.generated) == (6, 3, 6)
        assert [g.request for g in result.images] == reqs

    def test_a_holder_past_the_timeout_is_not_waited_for_forever(self, tmp_path: Path) -> None:
        fn = Counting()
        gen = make_generator(fn, batch_size=2)
        reqs = requests(2)
        stuck = ImageCache(tmp_path).lock(_keys_of(reqs, gen))
        stuck.acquire()
        try:
            with pytest.warns(LockWaitWarning, match=r"waited 0\.2 s for another process .*; generating it here too"):
                result = generate_images(reqs, gen, ImageCache(tmp_path, lock_timeout=0.2))
        finally:
            stuck.release()
        assert (result.new, result.generated) == (2, 2)

    def test_a_cached_block_takes_no_lock(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        gen = make_generator(Counting(), batch_size=2)
        generate_images(requests(5), gen, ImageCache(tmp_path))

        def no_lock(self: ImageCache, keys: Sequence[str]) -> FileLock:
            raise AssertionError("a fully cached block took a lock")

        monkeypatch.setattr(cache_module.ImageCache, "lock", no_lock)
        assert generate_images(requests(5), gen, ImageCache(tmp_path)).cached == 5

    def test_lock_names_follow_the_block(self, tmp_path: Path) -> None:
        cache = ImageCache(tmp_path)
        assert cache.lock_path(["a", "b"]) == cache.lock_path(["a", "b"])
        assert cache.lock_path(["a", "b"]) != cache.lock_path(["b", "a"])
        assert cache.lock_path(["a", "b"]).parent == tmp_path / "locks"


def test_reader_during_a_store_does_not_delete_the_writers_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Process B's load phase interleaved, deterministically, into process A's store."""
    from pytest_t2ibias.generate import cache as cache_module

    writer, reader = ImageCache(tmp_path), ImageCache(tmp_path)
    key = cache_key("noise", PROMPT, 1, {})
    real_write_text = cache_module.write_text_atomic

    def sidecar_write_after_a_concurrent_read(path: Path, text: str, **kwargs: Any) -> None:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")  # B may well warn; what matters is what it leaves on disk
            reader.load(key)
        real_write_text(path, text, **kwargs)

    monkeypatch.setattr(cache_module, "write_text_atomic", sidecar_write_after_a_concurrent_read)
    png = writer.store(key, noise_image(PROMPT, 1), {"prompt": PROMPT})
    monkeypatch.undo()

    assert png.exists(), f"store() returned {png.name}, which a concurrent reader deleted"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        assert writer.load(key) is not None


WORKER = textwrap.dedent(
    """
    import hashlib, json, sys, time, warnings
    from pathlib import Path
    import numpy as np
    from PIL import Image
    from pytest_t2ibias.generate import (
        CacheCorruptionWarning, CallableGenerator, ImageCache, ImageRequest, generate_images, image_seed,
    )

    def noise_image(prompt, seed):
        salt = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
        rng = np.random.default_rng([seed, salt])
        return Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))

    root, n, name, sync = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    reqs = [ImageRequest("doctor", 0, i, "a prompt", image_seed(0, "doctor", 0, i)) for i in range(n)]
    if name == "b":
        reqs.reverse()
    gen = CallableGenerator(noise_image, name="noise", params={"size": 16}, batch_size=1)
    (sync / name).touch()
    deadline = time.monotonic() + 60
    while len(list(sync.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = generate_images(reqs, gen, ImageCache(root))
    corrupt = sum(issubclass(w.category, CacheCorruptionWarning) for w in caught)
    print(json.dumps({
        "new": result.new, "cached": result.cached, "generated": result.generated, "corruption_warnings": corrupt,
    }))
    """
)


def test_two_processes_fill_one_cache(tmp_path: Path, no_corruption_warnings: None) -> None:
    n = 150
    root, sync = tmp_path / "cache", tmp_path / "sync"
    sync.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(n), name, str(sync)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    reports = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        report = json.loads(out)
        assert report["new"] + report["cached"] == n
        assert report["corruption_warnings"] == 0
        reports.append(report)
    # the block locks: each image generated by one process only, though both started at once
    assert sum(r["generated"] for r in reports) == n
    assert sum(r["new"] for r in reports) == n

    reqs = [ImageRequest("doctor", 0, i, "a prompt", image_seed(0, "doctor", 0, i)) for i in range(n)]
    gen = CallableGenerator(noise_image, name="noise", params={"size": 16})
    cache = ImageCache(root)
    names = files_under(root)
    assert len([x for x in names if x.endswith(".png")]) == n
    assert len([x for x in names if x.endswith(".json")]) == n
    assert len(names) == 2 * n, "temp files left behind"
    for r in reqs:
        key = cache_key(gen.fingerprint, r.prompt, r.seed, gen.params, 1, 0)  # batches of one image
        image = cache.load(key)  # a corrupt entry would raise here (warnings are errors)
        assert image is not None
        assert np.array_equal(as_array(image), as_array(noise_image(r.prompt, r.seed)))


class TestTinyEndToEnd:
    @pytest.fixture(scope="class")
    @classmethod
    def tiny(cls) -> Iterator[Any]:
        import torch

        from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # see test_generate_tiny.py: one thread is faster on a shared 2-core box
        yield DiffusersGenerator.tiny(batch_size=4)
        torch.set_num_threads(threads)

    def test_miss_then_hit(self, tiny: Any, suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        reqs = plan_requests(suite, 2, ["doctor", "nature"])
        cache = ImageCache(tmp_path)
        first = generate_images(reqs, tiny, cache)
        assert (first.new, first.cached) == (4, 0)
        assert len(files_under(tmp_path)) == 8
        sidecar = json.loads(first.images[0].path.with_suffix(".json").read_text())
        assert sidecar["model"] == tiny.fingerprint
        assert sidecar["batch_size"] == 2  # one block per category (batch size 4, two images each)
        assert sidecar["params"]["num_inference_steps"] == 4

        def must_not_run(prompts: list[str], seeds: list[int]) -> list[Image.Image]:
            raise AssertionError("the cache was not used")

        monkeypatch.setattr(tiny, "generate", must_not_run)
        second = generate_images(reqs, tiny, cache)
        assert (second.new, second.cached) == (0, 4)
        for a, b in zip(first.images, second.images, strict=True):
            assert a.image.size == b.image.size == (64, 64)
            assert np.array_equal(as_array(a.image), as_array(b.image))


def _fake_model(root: Path) -> Path:
    (root / "unet").mkdir(parents=True)
    (root / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (root / "unet" / "config.json").write_text('{"sample_size": 32}')
    (root / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00weights-v1" * 100)
    (root / "README.md").write_text("not part of the model")
    return root


@pytest.fixture
def count_digests(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = fingerprint_module._file_digest

    def counting(path: Path, chunk: int = 1 << 20) -> str:
        hashed.append(path)
        return real(path, chunk)

    monkeypatch.setattr(fingerprint_module, "_file_digest", counting)
    return hashed


class TestLocalFingerprint:
    def test_format_and_stability(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        fp = local_fingerprint(model, memo_path=tmp_path / "memo.json")
        assert fp.startswith("local:") and len(fp) == len("local:") + 20
        assert local_fingerprint(model, memo_path=tmp_path / "memo.json") == fp
        assert local_fingerprint(model, memo_path=tmp_path / "other-memo.json") == fp

    def test_same_files_elsewhere_same_fingerprint(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        copy = shutil.copytree(model, tmp_path / "copy")
        memo = tmp_path / "memo.json"
        assert local_fingerprint(copy, memo_path=memo) == local_fingerprint(model, memo_path=memo)

    def test_weight_change_changes_it(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        memo = tmp_path / "memo.json"
        before = local_fingerprint(model, memo_path=memo)
        (model / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00weights-v2" * 101)
        assert local_fingerprint(model, memo_path=memo) != before

    def test_same_size_edit_with_new_mtime_changes_it(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        memo = tmp_path / "memo.json"
        weights = model / "unet" / "diffusion_pytorch_model.safetensors"
        before = local_fingerprint(model, memo_path=memo)
        stat = weights.stat()
        weights.write_bytes(b"\x00weights-v3" * 100)  # same size
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert local_fingerprint(model, memo_path=memo) != before

    def test_config_change_and_rename_change_it(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        memo = tmp_path / "memo.json"
        before = local_fingerprint(model, memo_path=memo)
        (model / "unet" / "config.json").write_text('{"sample_size": 64}')
        after_config = local_fingerprint(model, memo_path=memo)
        assert after_config != before
        (model / "unet").rename(model / "unet2")
        assert local_fingerprint(model, memo_path=memo) != after_config

    def test_other_files_ignored(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        memo = tmp_path / "memo.json"
        before = local_fingerprint(model, memo_path=memo)
        (model / "README.md").write_text("edited")
        (model / "image.png").write_bytes(b"png")
        assert local_fingerprint(model, memo_path=memo) == before

    def test_memoised_by_size_and_mtime(self, tmp_path: Path, count_digests: list[Path]) -> None:
        model = _fake_model(tmp_path / "model")
        memo = tmp_path / "memo" / "hashes.json"
        first = local_fingerprint(model, memo_path=memo)
        assert len(count_digests) == 3  # two configs and one weight file
        assert isinstance(json.loads(memo.read_text()), dict)

        count_digests.clear()
        assert local_fingerprint(model, memo_path=memo) == first
        assert count_digests == []

        weights = model / "unet" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(b"\x00weights-v2" * 101)
        local_fingerprint(model, memo_path=memo)
        assert count_digests == [weights.resolve()]

    @pytest.mark.parametrize("content", [b"{not json", b"[1, 2, 3]", b'{"x": "not an entry"}', b"\xff\xfe"])
    def test_corrupt_memo_tolerated(self, tmp_path: Path, count_digests: list[Path], content: bytes) -> None:
        model = _fake_model(tmp_path / "model")
        reference = local_fingerprint(model, memo_path=tmp_path / "clean.json")
        memo = tmp_path / "memo.json"
        memo.write_bytes(content)
        count_digests.clear()
        assert local_fingerprint(model, memo_path=memo) == reference
        assert len(count_digests) == 3
        assert isinstance(json.loads(memo.read_text()), dict), "the memo was not rewritten"

    def test_unwritable_memo_tolerated(self, tmp_path: Path) -> None:
        model = _fake_model(tmp_path / "model")
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        reference = local_fingerprint(model, memo_path=tmp_path / "memo.json")
        assert local_fingerprint(model, memo_path=blocker / "memo.json") == reference

    def test_default_memo_under_xdg_cache(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        local_fingerprint(_fake_model(tmp_path / "model"))
        assert (tmp_path / "xdg" / "pytest-t2ibias" / "file-hashes.json").is_file()

    def test_empty_folder(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="no config or weight files to fingerprint"):
            local_fingerprint(tmp_path, memo_path=tmp_path / "memo.json")


class TestHubFingerprint:
    @pytest.fixture
    def hub_cache(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        import huggingface_hub.constants

        root = tmp_path / "hub"
        refs = root / "models--org--sd-model" / "refs"
        refs.mkdir(parents=True)
        (refs / "main").write_text(COMMIT + "\n")
        (refs / "broken").write_text("not-a-commit")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
        return root

    def test_default_ref_resolved_to_commit(self, hub_cache: Path) -> None:
        assert hub_fingerprint("org/sd-model", None) == f"hub:org/sd-model@{COMMIT}"
        assert hub_fingerprint("org/sd-model", "main") == f"hub:org/sd-model@{COMMIT}"

    def test_commit_kept(self, hub_cache: Path) -> None:
        other = "f" * 40
        assert hub_fingerprint("org/sd-model", other) == f"hub:org/sd-model@{other}"

    def test_unresolvable_ref_kept(self, hub_cache: Path) -> None:
        assert hub_fingerprint("org/sd-model", "v2.0") == "hub:org/sd-model@v2.0"
        assert hub_fingerprint("org/sd-model", "broken") == "hub:org/sd-model@broken"
        assert hub_fingerprint("org/other-model", None) == "hub:org/other-model@main"
