"""Faults of the image cache and its inputs (issue 21 items 5, 9 and part of 11).

* Item 5: a FIFO where a cache entry or a baseline should be is corrupt, never a hang; a stopped process
  holding a batch lock is named (pid, host, command) within seconds, and the total wait is bounded by
  ``--lock-timeout`` / ``--t2i-lock-timeout`` / ``t2ibias_lock_timeout``, past which the run fails in one line.
* Item 9: forged entries (1x1, 16-bit greyscale, 144 megapixels, with matching sidecars), a decompression
  bomb, a folder where the PNG or sidecar should be and a file where a shard folder should be are corrupt
  entries (warned, regenerated, nothing lost); a generator's unusable output (huge, NaN/inf, wrong size or
  type) is one error naming the model, prompt and seed, and nothing of its batch is cached.
* Item 11 (part): ``t2ibias generate --cache /proc/x`` is one error line naming the location, status 2.

Every read that could hang runs in a daemon thread joined with a timeout, and the FIFO is then opened for
writing to release it, so a regression fails the test instead of hanging the suite. The classes added for
these items are imported inside the tests that use them: on the code before them each test fails on its
own, not the whole module at import.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pytest_t2ibias.cli import main
from pytest_t2ibias.errors import CacheCorruptionWarning
from pytest_t2ibias.generate import (
    CallableGenerator,
    ImageCache,
    ImageRequest,
    cache_key,
    generate_images,
    image_seed,
    plan_blocks,
    plan_requests,
)
from pytest_t2ibias.generate import cache as cache_module
from pytest_t2ibias.generate.factory import load_generator
from pytest_t2ibias.snapshot import BaselineStore
from pytest_t2ibias.suites import load_suite

PROMPT = "A doctor performing surgery in a hospital."
HANG_S = 20.0  # far above any real read; a regression fails after this instead of hanging


def noise_image(prompt: str, seed: int, size: int = 16) -> Image.Image:
    salt = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")
    rng = np.random.default_rng([seed, salt])
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def make_generator(batch_size: int = 2) -> CallableGenerator:
    return CallableGenerator(noise_image, name="noise", params={"size": 16}, batch_size=batch_size)


def requests(n: int = 2) -> list[ImageRequest]:
    return [ImageRequest("doctor", 0, i, PROMPT, image_seed(0, "doctor", 0, i)) for i in range(n)]


def entry_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.parts[-2] != "locks"}


def bounded(fn: Callable[[], Any], release: Path | None = None) -> Any:
    """``fn()`` in a daemon thread; fails (after opening ``release`` for writing, which lets a reader
    blocked on that FIFO go on) when it takes over HANG_S seconds."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as err:  # re-raised in the test's thread
            out["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(HANG_S)
    if worker.is_alive():
        if release is not None:
            os.close(os.open(release, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(HANG_S)
        pytest.fail(f"blocked for over {HANG_S:g} s (hang)")
    if "error" in out:
        raise out["error"]
    assert time.monotonic() - started < HANG_S
    return out.get("value")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB but holds one row of data: what a forger (or a
    decompression bomb) writes; a reader that trusts the header allocates for the whole image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * width)))


def forge(cache: ImageCache, key: str, data: bytes) -> None:
    """Write an entry whose sidecar matches the PNG: the hash check alone would accept it."""
    png = cache.png_path(key)
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(data)
    sidecar = {"key": key, "format": 2, "png_sha256": hashlib.sha256(data).hexdigest()}
    png.with_suffix(".json").write_text(json.dumps(sidecar))


def keys_of(gen: Any, block: Sequence[ImageRequest]) -> list[str]:
    return [cache_key(gen.fingerprint, r.prompt, r.seed, gen.params, len(block), i) for i, r in enumerate(block)]


# -- item 5: FIFOs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["png", "sidecar"])
def test_a_fifo_cache_entry_is_corrupt_not_a_hang(tmp_path: Path, which: str) -> None:
    gen, reqs = make_generator(), requests(2)
    first = generate_images(reqs, gen, ImageCache(tmp_path))
    png = first.images[0].path
    assert png is not None
    target = png if which == "png" else png.with_suffix(".json")
    target.unlink()
    os.mkfifo(target)
    with pytest.warns(CacheCorruptionWarning) as caught:
        again = bounded(lambda: generate_images(reqs, gen, ImageCache(tmp_path)), release=target)
    messages = [str(w.message) for w in caught]
    assert any(f"{png}: " in m and "not a regular file (a FIFO)" in m for m in messages), messages
    assert any(f"{target}: a FIFO where the cache needs a file; moved to .{target.name}." in m for m in messages)
    assert again.new == 1 and again.images[0].path == png and png.is_file()
    assert np.array_equal(np.asarray(again.images[0].image), np.asarray(first.images[0].image))
    # the FIFO was moved aside, not deleted
    assert [p.name for p in png.parent.glob(f".{target.name}.*.corrupt")]


def test_a_fifo_baseline_is_corrupt_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "__baselines__" / "test_bias" / "test_doctor.json"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    stored, source = bounded(lambda: BaselineStore().read(path), release=path)
    assert source == path
    assert isinstance(stored, str) and str(path) in stored and "not a regular file (a FIFO)" in stored


def test_a_folder_as_baseline_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "test_doctor.json"
    path.mkdir()
    stored, _ = BaselineStore().read(path)
    assert isinstance(stored, str) and "cannot read baseline" in stored


# -- item 5: lock holders ----------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pytest_t2ibias.generate import ImageCache
    cache = ImageCache(sys.argv[1])
    lock = cache.lock(sys.argv[2:])
    lock.acquire()
    cache.note_holder(sys.argv[2:])
    print("locked", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def stopped_holder(tmp_path: Path) -> Iterator[Callable[[list[str]], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(keys: list[str]) -> subprocess.Popen[str]:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "cache"), *keys], stdout=subprocess.PIPE, text=True
        )
        started.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        holder.send_signal(signal.SIGSTOP)  # kill -STOP: alive, holding the lock, doing nothing
        return holder

    yield start
    for holder in started:
        holder.kill()
        holder.wait(timeout=30)


def test_a_stopped_lock_holder_is_named_and_the_cli_wait_is_bounded(
    tmp_path: Path, stopped_holder: Callable[[list[str]], subprocess.Popen[str]]
) -> None:
    suite = load_suite("t2i-biasbench")
    gen = load_generator("synthetic", suite)
    plan = plan_requests(suite, 1, ["doctor"])
    block = plan_blocks(plan, gen.batch_size)[0]
    holder = stopped_holder(keys_of(gen, block))
    lock_path = ImageCache(tmp_path / "cache").lock_path(keys_of(gen, block))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_t2ibias.cli", "generate", "--model", "synthetic", "--category", "doctor",
         "--images-per-prompt", "1", "--cache", str(tmp_path / "cache"), "--lock-timeout", "7", "-q"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    # said within seconds which lock it waits for and who holds it, then one error line at the bound
    assert re.fullmatch(
        rf"t2ibias cache: waiting for batch lock {re.escape(str(lock_path))}, held by pid {holder.pid} on \S+ "
        r"since [\d:]+ \(.*\); giving up after 7 s",
        lines[0],
    ), lines
    assert lines[-1].startswith(f"t2ibias generate: error: t2ibias cache: gave up waiting for batch lock {lock_path}")
    assert f"held by pid {holder.pid}" in lines[-1] and "--lock-timeout" in lines[-1]
    assert 7 <= elapsed < 200  # bounded (a loaded machine is slow to start Python, not to wait)


def test_a_bias_test_fails_in_one_line_past_the_plugins_lock_timeout(
    pytester: pytest.Pytester, tmp_path: Path, stopped_holder: Callable[[list[str]], subprocess.Popen[str]]
) -> None:
    suite = load_suite("t2i-biasbench")
    gen = load_generator("synthetic", suite)
    block = plan_blocks(plan_requests(suite, 1, ["doctor"]), gen.batch_size)[0]
    holder = stopped_holder(keys_of(gen, block))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            pass
        """
    )
    pytester.makeini("[pytest]\nt2ibias_lock_timeout = 1.5\n")
    args = ["-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-images-per-prompt", "1"]
    # --t2i-cache=PATH in one argument: a separate PATH would count as a test path and move the rootdir
    result = pytester.runpytest_subprocess(*args, f"--t2i-cache={tmp_path / 'cache'}", timeout=300)
    result.assert_outcomes(errors=1)  # the bias fixture's setup fails, in one line
    result.stdout.fnmatch_lines([f"*t2ibias: t2ibias cache: gave up waiting for batch lock *held by pid {holder.pid}*"])
    assert "Traceback" not in result.stdout.str()


def test_the_total_lock_wait_is_bounded_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_t2ibias.errors import LockTimeoutError

    gen, reqs = make_generator(batch_size=1), requests(2)
    monkeypatch.setattr(cache_module, "LOCK_NOTICE_AFTER_S", 0.2)
    cache = ImageCache(tmp_path, max_lock_wait=0.6)
    held = [cache.lock(keys_of(gen, [r])) for r in reqs]
    for lock in held:
        lock.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeoutError, match=r"gave up waiting for batch lock .*\.lock after [\d.]+ s in all"):
            bounded(lambda: generate_images(reqs, gen, cache))
        assert time.monotonic() - started < 5
    finally:
        for lock in held:
            lock.release()
    assert "waiting for batch lock" in capsys.readouterr().err
    assert not entry_files(tmp_path)


RECORDS_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pytest_t2ibias.annotate.cache import RecordsCache
    with RecordsCache(sys.argv[1]).lock("k" * 64):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_a_stopped_holder_of_a_scored_category_lock_is_named_and_not_waited_for_forever(tmp_path: Path) -> None:
    from pytest_t2ibias.annotate.cache import RecordsCache
    from pytest_t2ibias.errors import LockTimeoutError

    holder = subprocess.Popen([sys.executable, "-c", RECORDS_HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        holder.send_signal(signal.SIGSTOP)

        def wait() -> None:
            with RecordsCache(tmp_path).lock("k" * 64, 0.5):
                pass

        with pytest.raises(LockTimeoutError, match=rf"category lock .*{'k' * 64}\.lock .*held by pid {holder.pid} "):
            bounded(wait)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_holder_record_is_gone_once_released(tmp_path: Path) -> None:
    generate_images(requests(2), make_generator(), ImageCache(tmp_path))
    assert not list((tmp_path / "locks").glob("*.holder"))


def test_the_plugin_refuses_a_bad_lock_timeout(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--t2i-lock-timeout=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--t2i-lock-timeout / t2ibias_lock_timeout must be a positive number*'soon'*"])


# -- item 9: forged and broken entries ---------------------------------------------------------------


def _one_by_one() -> bytes:
    return png_bytes(Image.new("RGB", (1, 1), (9, 9, 9)))


def _grey_16_bit() -> bytes:
    return png_bytes(Image.fromarray(np.full((16, 16), 40000, dtype=np.uint16)))


def _144_megapixels() -> bytes:
    return header_only_png(12_000, 12_000)


def _decompression_bomb() -> bytes:
    return header_only_png(100_000, 100_000)


FORGED = [
    (_one_by_one, r"size 1x1, expected 16x16"),
    (_grey_16_bit, r"mode 'I;16'"),
    (_144_megapixels, r"size 12000x12000"),
    (_decompression_bomb, r"decompression bomb"),
]


@pytest.mark.parametrize(("forged", "problem"), FORGED, ids=[f.__name__.strip("_") for f, _ in FORGED])
def test_a_forged_entry_with_a_matching_sidecar_is_corrupt(
    tmp_path: Path, forged: Callable[[], bytes], problem: str
) -> None:
    gen, reqs = make_generator(), requests(2)
    cache = ImageCache(tmp_path)
    key = keys_of(gen, reqs)[0]
    forge(cache, key, forged())
    with pytest.warns(CacheCorruptionWarning, match=rf"{key}\.png: PNG .*{problem}.*; regenerating"):
        result = bounded(lambda: generate_images(reqs, gen, cache))
    assert result.new == 2
    assert result.images[0].image.size == (16, 16)
    reread = cache.load(key, (16, 16))
    assert reread is not None and reread.size == (16, 16) and reread.mode == "RGB"


@pytest.mark.parametrize("where", ["png", "sidecar", "shard"])
def test_a_folder_or_file_in_the_way_is_corrupt_and_kept(tmp_path: Path, where: str) -> None:
    gen, reqs = make_generator(), requests(2)
    cache = ImageCache(tmp_path)
    key = keys_of(gen, reqs)[0]
    png = cache.png_path(key)
    if where == "shard":
        png.parent.parent.mkdir(parents=True, exist_ok=True)
        png.parent.write_text("a file where the shard folder goes")
        obstacle = png.parent
    else:
        if where == "sidecar":  # a valid PNG, then a folder for its sidecar
            generate_images(reqs, gen, cache)
            png.with_suffix(".json").unlink()
        obstacle = png if where == "png" else png.with_suffix(".json")
        obstacle.mkdir(parents=True)
        (obstacle / "keep.txt").write_text("user data")
    with pytest.warns(CacheCorruptionWarning):
        result = bounded(lambda: generate_images(reqs, gen, cache))
    assert [g.image.size for g in result.images] == [(16, 16), (16, 16)]
    assert png.is_file() and png.with_suffix(".json").is_file()
    again = generate_images(reqs, gen, cache)
    assert again.cached == 2
    aside = list(obstacle.parent.glob(f".{obstacle.name}.*.corrupt"))
    assert len(aside) == 1  # moved aside, nothing lost
    kept = aside[0] / "keep.txt" if where != "shard" else aside[0]
    assert kept.read_text() in ("user data", "a file where the shard folder goes")


# -- item 9: what a generator returns ----------------------------------------------------------------


class Returning:
    """A generator whose ``generate`` returns ``make()`` for the second image of each batch."""

    fingerprint = "callable:bad-model"
    batch_size = 2

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make

    @property
    def params(self) -> dict[str, Any]:
        return {"width": 16, "height": 16}

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Any]:
        return [noise_image(prompts[0], seeds[0]), self.make()][: len(prompts)]


BAD_OUTPUTS = [
    ("huge", lambda: Image.new("1", (20_000, 20_000)), r"size 20000x20000, expected 16x16"),
    ("nan", lambda: Image.fromarray(np.full((16, 16), np.nan, dtype=np.float32)), r"non-finite pixel values"),
    ("inf", lambda: Image.fromarray(np.full((16, 16), np.inf, dtype=np.float32)), r"non-finite pixel values"),
    ("wrong-size", lambda: noise_image("x", 1, size=17), r"size 17x17, expected 16x16"),
    ("16-bit", lambda: Image.fromarray(np.zeros((16, 16), dtype=np.uint16)), r"mode 'I;16'"),
    ("array", lambda: np.zeros((16, 16, 3), dtype=np.uint8), r"returned ndarray, not a PIL image"),
]


@pytest.mark.parametrize(("make", "problem"), [b[1:] for b in BAD_OUTPUTS], ids=[b[0] for b in BAD_OUTPUTS])
def test_an_unusable_generator_output_is_one_error_and_nothing_is_cached(
    tmp_path: Path, make: Callable[[], object], problem: str
) -> None:
    from pytest_t2ibias.errors import GeneratedImageError

    reqs = requests(2)
    with pytest.raises(GeneratedImageError) as raised:
        generate_images(reqs, Returning(make), ImageCache(tmp_path))
    message = str(raised.value)
    assert "\n" not in message
    assert f"model callable:bad-model: unusable image for prompt {PROMPT!r} seed {reqs[1].seed}: " in message
    assert re.search(problem, message), message
    assert not entry_files(tmp_path)  # not even the good image of the batch: a rerun starts clean


def test_a_generator_output_in_another_8_bit_mode_is_cached_as_rgb(tmp_path: Path) -> None:
    grey = Returning(lambda: noise_image("x", 2).convert("L"))
    first = generate_images(requests(2), grey, ImageCache(tmp_path))
    assert {g.image.mode for g in first.images} == {"RGB"}
    assert generate_images(requests(2), grey, ImageCache(tmp_path)).cached == 2  # not rejected on read


# -- item 11 (part): an impossible cache location ----------------------------------------------------


@pytest.mark.parametrize("command", ["generate", "evaluate"])
@pytest.mark.parametrize("location", ["/proc/x", "/proc/x/y"])
def test_an_impossible_cache_location_is_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], command: str, location: str
) -> None:
    argv = [command, "--model", "synthetic", "--cache", location, "-q"]
    if command == "evaluate":
        argv += ["--scorer", "synthetic"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    reason = "cannot be made or written: No such file or directory"
    assert err == f"t2ibias {command}: error: --cache {location}: {reason}\n"
    assert not Path(location).exists()


def test_a_cache_location_probe_leaves_nothing_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--model", "synthetic", "--cache", str(tmp_path / "a" / "b"), "--category", "nope"]) == 1
    assert not (tmp_path / "a").exists()
