"""The GPU benchmark keeps working on the CPU: its reduced size runs every variant and prints its RESULT line."""

from __future__ import annotations

import importlib
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_gpu")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_reduced_run_prints_every_ratio(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench.main(["--reduced", "--quick", "--images", "2", "--steps", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("reduced shapes at 64x64, tiny CLIP, float32 on cpu, 1 steps")
    assert re.fullmatch(
        r"batch  2 \(2 images\): generation stage .* overlapped \d\.\d{3}, sequential \d\.\d{3}", lines[1]
    )
    match = re.fullmatch(
        r"RESULT gen_ratio_min=(\d+\.\d{3}) score_ratio_min=(\d+\.\d{3}) e2e_over_gen_max=(\d+\.\d{3})", lines[-1]
    )
    assert match, lines[-1]
    assert [float(x) for x in match.groups()] == pytest.approx(
        [report["gen_ratio_min"], report["score_ratio_min"], report["e2e_over_gen_max"]], abs=5e-4
    )
    assert all(math.isfinite(v) and v > 0 for v in report.values())


def test_sd15_shapes_are_the_published_ones(bench: ModuleType) -> None:
    """The full-size configuration is SD 1.5's UNet and VAE and ViT-L/14's vision tower (not built here)."""
    assert bench.SD15["unet"]["block_out_channels"] == (320, 640, 1280, 1280)
    assert bench.SD15["unet"]["cross_attention_dim"] == 768
    assert bench.SD15["vae"]["block_out_channels"] == (128, 256, 512, 512)
    assert bench.SD15["size"] == 512
    vision = bench.SD15["clip"]["vision"]
    assert (vision["layers"], vision["width"], vision["patch_size"], vision["image_size"]) == (24, 1024, 14, 224)
