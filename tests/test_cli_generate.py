"""``t2ibias generate`` end to end on the tiny model: new vs cached counts, reruns that generate nothing,
category and seed selection, and one-line errors.

The tiny pipeline is built once for the module and handed to every ``DiffusersGenerator.tiny()`` the
command makes (building it is ~4 s; the generator settings the command chooses are untouched).
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_t2ibias.cli import main
from pytest_t2ibias.generate.tiny import build_tiny_pipeline

DONE = re.compile(r"done in \d+\.\d s: \d+ images: \d+ generated, \d+ read from the cache\n")
SUMMARY = re.compile(
    r"^(?P<total>\d+) images of suite 't2i-biasbench' by (?P<model>\S+) in (?P<root>.+): "
    r"(?P<new>\d+) new, (?P<cached>\d+) cached$"
)


@pytest.fixture(scope="module")
def tiny_pipeline() -> Iterator[Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_generate_tiny.py: one thread is faster on a shared 2-core box
    yield build_tiny_pipeline()
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _shared_tiny(tiny_pipeline: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("pytest_t2ibias.generate.diffusers_adapter.build_tiny_pipeline", lambda: tiny_pipeline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.chdir(tmp_path)  # nothing lands in the repository, whatever a test forgets to pass


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def summary(out: str) -> dict[str, Any]:
    lines = out.splitlines()
    assert len(lines) == 1, out
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    found: dict[str, Any] = match.groupdict()
    for name in ("total", "new", "cached"):
        found[name] = int(found[name])
    return found


def keys(cache: Path) -> set[str]:
    return {p.stem for p in cache.rglob("*.png")}


def sidecars(cache: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(cache.rglob("*.json"))]


def test_fills_then_reuses_the_cache(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base = ["--model", "tiny", "--cache", str(cache), "--no-progress"]

    code, out, err = run(capsys, *base, "--images-per-prompt", "2")
    assert code == 0, err
    first = summary(out)
    assert (first["total"], first["new"], first["cached"]) == (10, 10, 0)
    assert first["model"].startswith("tiny:")
    assert first["root"] == str(cache)
    assert DONE.fullmatch(err), err  # --no-progress: no bar, the closing line alone
    assert len(keys(cache)) == 10
    assert len(sidecars(cache)) == 10

    code, out, _ = run(capsys, *base, "--images-per-prompt", "2")
    assert code == 0
    assert (summary(out)["new"], summary(out)["cached"]) == (0, 10)

    # A cache key holds the image's batch length and slot (fixed blocks of the plan, docs/generate.md):
    # with batches of 2, images 0-1 of each prompt keep their block of the run above and image 2 is new.
    code, out, _ = run(capsys, *base, "--images-per-prompt", "3", "--batch-size", "2")
    assert code == 0
    assert (summary(out)["total"], summary(out)["new"], summary(out)["cached"]) == (15, 5, 10)
    assert len(keys(cache)) == 15
    assert sorted(s["image_index"] for s in sidecars(cache) if s["category"] == "doctor") == [0, 1, 2]


def test_batch_size_is_not_part_of_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["--model", "tiny", "--cache", str(tmp_path / "c"), "--no-progress", "--images-per-prompt", "1"]
    assert run(capsys, *base)[0] == 0
    code, out, _ = run(capsys, *base, "--batch-size", "2")
    assert code == 0
    assert (summary(out)["new"], summary(out)["cached"]) == (0, 5)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--model", "tiny", "--cache", str(tmp_path / "c"), "--images-per-prompt", "1")
    tty = Tty()
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", tty)  # bars are drawn on a terminal only
        code, out, _ = run(capsys, *args)
    err = tty.getvalue()
    assert code == 0
    assert summary(out)["new"] == 5  # stdout holds the summary line alone
    assert "generate doctor: 1/1 images" in err and "generate nature: 1/1 images" in err
    assert DONE.fullmatch(err.rsplit("\n", 2)[-2] + "\n"), err  # the last line

    code, out, err = run(capsys, *args)  # stderr is no terminal here (captured): no bars, the closing line
    assert code == 0
    assert summary(out)["cached"] == 5
    assert DONE.fullmatch(err) and ", 5 read from the cache" in err, err


def test_one_category(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["--model", "tiny", "--cache", str(cache), "--no-progress", "--images-per-prompt", "2"]
    code, out, _ = run(capsys, *args, "--category", "doctor")
    assert code == 0
    assert (summary(out)["total"], summary(out)["new"]) == (2, 2)
    assert [s["category"] for s in sidecars(cache)] == ["doctor", "doctor"]
    assert {s["prompt"] for s in sidecars(cache)} == {"A doctor performing surgery in a hospital."}

    # the doctor images are the same ones a full run makes: a full run finds them cached
    code, out, _ = run(capsys, *args)
    assert (summary(out)["new"], summary(out)["cached"]) == (8, 2)


def test_seed_changes_the_images(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["--model", "tiny", "--no-progress", "--images-per-prompt", "1", "--category", "beauty"]
    assert run(capsys, *base, "--cache", str(tmp_path / "a"))[0] == 0
    assert run(capsys, *base, "--cache", str(tmp_path / "b"), "--seed", "1")[0] == 0
    assert run(capsys, *base, "--cache", str(tmp_path / "c"), "--seed", "0")[0] == 0

    assert keys(tmp_path / "a") == keys(tmp_path / "c"), "--seed 0 is the suite's own seed"
    assert keys(tmp_path / "a").isdisjoint(keys(tmp_path / "b"))
    [a], [b] = sidecars(tmp_path / "a"), sidecars(tmp_path / "b")
    assert a["seed"] != b["seed"]
    with (
        Image.open(next((tmp_path / "a").rglob("*.png"))) as ia,
        Image.open(next((tmp_path / "b").rglob("*.png"))) as ib,
    ):
        assert not np.array_equal(np.asarray(ia), np.asarray(ib))

    # into one folder: the other seed's images are all new
    code, out, _ = run(capsys, *base, "--cache", str(tmp_path / "a"), "--seed", "1")
    assert code == 0
    assert (summary(out)["new"], summary(out)["cached"]) == (1, 0)


def test_steps_change_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["--model", "tiny", "--cache", str(tmp_path / "c"), "--no-progress", "--images-per-prompt", "1"]
    assert run(capsys, *base, "--category", "nature")[0] == 0
    code, out, _ = run(capsys, *base, "--category", "nature", "--steps", "2")
    assert code == 0
    assert (summary(out)["new"], summary(out)["cached"]) == (1, 0)
    assert sorted(s["params"]["num_inference_steps"] for s in sidecars(tmp_path / "c")) == [2, 4]


def one_line_error(code: int, out: str, err: str) -> str:
    __tracebackhide__ = True
    assert code == 1
    assert out == ""
    assert err.startswith("t2ibias generate: error: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_missing_model_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "models" / "no-such-pipeline"
    err = one_line_error(*run(capsys, "--model", str(missing), "--cache", str(tmp_path / "c"), "--no-progress"))
    assert f"model path '{missing}' does not exist" in err
    assert not (tmp_path / "c").exists()


def test_unknown_category(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = one_line_error(*run(capsys, "--model", "tiny", "--category", "surgeon", "--cache", str(tmp_path / "c")))
    assert "['surgeon']" in err and "valid: ['beauty', 'doctor', 'culture', 'animal', 'nature']" in err


def test_images_per_prompt_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # a usage error now (argparse checks the option, status 2), still one line naming the option
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--model", "tiny", "--images-per-prompt", "0", "--cache", str(tmp_path / "c")])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert "--images-per-prompt: must be >= 1, got 0" in err


def test_unknown_suite(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one_line_error(*run(capsys, "--model", "tiny", "--suite", "no-such-suite", "--cache", str(tmp_path / "c")))


def test_tiny_checks_the_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["--model", "tiny", "--device", "nonsense", "--images-per-prompt", "1", "--category", "doctor"]
    err = one_line_error(*run(capsys, *args, "--cache", str(tmp_path / "c"), "--no-progress"))
    assert "`device`" in err


def test_zero_steps_rejected(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["--model", "tiny", "--steps", "0", "--images-per-prompt", "1", "--category", "doctor"]
    err = one_line_error(*run(capsys, *args, "--cache", str(tmp_path / "c"), "--no-progress"))
    assert "num_inference_steps" in err
