"""The image cache at an fsspec URL (``memory://``, ``file://``): the local layout, a read-through local
copy, atomic commits, corrupt remote entries regenerated, and no credentials in what it says."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from PIL import Image

from pytest_t2ibias.errors import CacheCorruptionWarning, CacheStorageError
from pytest_t2ibias.generate import CallableGenerator, ImageCache, generate_images
from pytest_t2ibias.generate.stage import plan_requests
from pytest_t2ibias.generate.storage import RemoteStore, is_url
from pytest_t2ibias.suites import load_suite


class Counting:
    """A callable generator that counts the images it makes."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, prompt: str, seed: int) -> Image.Image:
        self.made += 1
        return Image.new("RGB", (8, 8), (seed % 256, len(prompt) % 256, 7))


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://t2ibias-{uuid.uuid4().hex}/cache"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url.removeprefix("memory://")):
        fs.rm(url.removeprefix("memory://"), recursive=True)


def _plan() -> list[Any]:
    return plan_requests(load_suite("t2i-biasbench"), 5, ["doctor"])


def _files(fs: Any, root: str) -> dict[str, bytes]:
    return {
        path.removeprefix(root.rstrip("/") + "/"): fs.cat_file(path)
        for path in fs.find(root)
        if "/.tmp/" not in path and "/locks/" not in path
    }


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_a_url_cache_holds_the_local_layout_and_a_second_runner_reads_it(
    scheme: str, memory_url: str, tmp_path: Path
) -> None:
    url = memory_url if scheme == "memory" else f"file://{tmp_path / 'remote'}"
    counting = Counting()
    generator = CallableGenerator(counting, "counting", batch_size=2)
    local = ImageCache(tmp_path / "plain")
    generate_images(_plan(), generator, local)

    first = ImageCache(url, local_copy=tmp_path / "copy-1")
    made = generate_images(_plan(), generator, first)
    assert (made.new, made.cached) == (5, 0)
    fs, root = fsspec.core.url_to_fs(url)
    remote = _files(fs, root)
    plain = {str(p.relative_to(tmp_path / "plain")): p.read_bytes() for p in (tmp_path / "plain").rglob("??/*")}
    assert remote == plain  # the same content-addressed names and bytes as a local cache
    assert len(remote) == 10  # 5 PNGs and their sidecars

    counting.made = 0
    second = ImageCache(url, local_copy=tmp_path / "copy-2")  # another runner: an empty local copy
    again = generate_images(_plan(), generator, second)
    assert counting.made == 0
    assert (again.new, again.cached) == (0, 5)
    assert [g.image.tobytes() for g in again.images] == [g.image.tobytes() for g in made.images]
    assert all(g.path is not None and g.path.is_relative_to(tmp_path / "copy-2") for g in again.images)


def test_a_corrupt_remote_entry_is_reported_and_regenerated(memory_url: str, tmp_path: Path) -> None:
    counting = Counting()
    generator = CallableGenerator(counting, "counting", batch_size=5)
    generate_images(_plan(), generator, ImageCache(memory_url, local_copy=tmp_path / "a"))
    fs, root = fsspec.core.url_to_fs(memory_url)
    png = sorted(p for p in fs.find(root) if p.endswith(".png"))[0]
    good = fs.cat_file(png)
    fs.pipe_file(png, good[: len(good) // 2])  # truncated upload

    counting.made = 0
    with pytest.warns(CacheCorruptionWarning, match="does not match the hash"):
        result = generate_images(_plan(), generator, ImageCache(memory_url, local_copy=tmp_path / "b"))
    assert counting.made == 5  # the block holding it, regenerated
    assert result.new == 1 and result.cached == 4
    assert fs.cat_file(png) == good  # the remote entry is whole again


def test_a_crash_between_upload_and_commit_leaves_no_visible_entry(
    memory_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ImageCache(memory_url, local_copy=tmp_path / "a")
    assert cache.remote is not None

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the process dies after the upload, before the move

    monkeypatch.setattr(cache.remote.fs, "mv", crash)
    with pytest.raises(KeyboardInterrupt):
        generate_images(_plan(), CallableGenerator(Counting(), "counting", batch_size=5), cache)
    monkeypatch.undo()
    fs, root = fsspec.core.url_to_fs(memory_url)
    assert not [p for p in fs.find(root) if "/.tmp/" not in p]  # nothing under a final name
    assert not list((tmp_path / "a").rglob("*.png"))  # nor in the local copy: it would never be uploaded
    counting = Counting()
    fresh = ImageCache(memory_url, local_copy=tmp_path / "b")
    result = generate_images(_plan(), CallableGenerator(counting, "counting", batch_size=5), fresh)
    assert counting.made == 5 and result.new == 5


def test_credentials_never_appear_in_errors_or_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "s3://AKIAEXAMPLE:sup3rsecret@bucket/cache?token=t0ken"
    try:
        cache = ImageCache(url, local_copy=tmp_path)
    except CacheStorageError as err:  # s3fs not installed: the error names the URL, masked
        text = str(err)
    else:  # s3fs installed: no network here, so the first read fails, masked
        with pytest.raises(CacheStorageError) as caught:
            cache.load("ab" * 32)
        text = str(caught.value)
        assert "***@bucket" in cache.location
    assert "sup3rsecret" not in text and "AKIAEXAMPLE" not in text and "t0ken" not in text
    assert "***" in text

    store = RemoteStore("memory://user:pa55word@host/x")

    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise PermissionError("denied for memory://user:pa55word@host/x/ab/c.png")

    monkeypatch.setattr(store.fs, "cat_file", refuse)
    with pytest.raises(CacheStorageError, match=r"cannot read") as caught:
        store.read("ab/c.png")
    assert "pa55word" not in str(caught.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.shown == "memory://***@host/x"


def test_a_url_is_told_from_a_folder() -> None:
    assert is_url("gs://bucket/x") and is_url("file:///tmp/x") and is_url("memory://c")
    assert not is_url("cache") and not is_url("/tmp/cache") and not is_url("C:\\cache")


def test_the_plugin_fills_a_url_cache_and_a_second_run_reads_it(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--t2i-cache file://...``: the bias test's images land at the URL, in the local layout; a run on
    another machine (another read-through copy) reads them instead of writing them again."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.t2ibias(category="doctor")
        def test_doctor(t2ibias_result):
            assert len(t2ibias_result.records) == 4
        """
    )
    remote = tmp_path / "remote"
    args = ["-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-images-per-prompt", "4"]
    args += ["--t2i-cache", f"file://{remote}"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "machine-1"))
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    pngs = sorted(p.relative_to(remote) for p in remote.rglob("??/*.png"))
    assert len(pngs) == 4
    assert len(list((tmp_path / "machine-1" / "t2ibias" / "remote").rglob("??/*.png"))) == 4  # the local copy
    stamps = {p: (remote / p).stat().st_mtime_ns for p in pngs}

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "machine-2"))
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert {p: (remote / p).stat().st_mtime_ns for p in pngs} == stamps  # read, not written again
    assert len(list((tmp_path / "machine-2" / "t2ibias" / "remote").rglob("??/*.png"))) == 4


def test_a_url_cache_that_cannot_open_is_a_usage_error_with_masked_credentials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--t2i-model", "synthetic", "--t2i-cache", "nosuchfs://user:hunter2@host/x"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str() + result.stdout.str()
    assert "t2ibias: --t2i-cache / t2ibias_cache: cache nosuchfs://***@host/x: cannot open" in text
    assert "hunter2" not in text
