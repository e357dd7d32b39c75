"""The HTML report at the issue's size: 5 categories x 200 images, with a baseline and a failing category.

    python benchmarks/bench_report.py [--n 200] [--rounds 3] [--full-images] [--photos]

Builds a real run from the synthetic model (``tests/report_fixtures.py``: images saved as PNG files,
metrics measured, checks judged; doctor shifted from 50 % to 80 % male since its baseline, so it fails
with flips), then times ``write_html`` (every round from scratch: thumbnails encoded, charts drawn) and
prints the page size. Targets: < 5 MB and < 2 s. Last line: ``RESULT html_mb=... render_s=...`` (the
median round).

``--photos`` replaces every image file by a 512 px photo-like picture (smooth seeded noise, stored as
JPEG), as a real model's cache holds: the thumbnails are then 128 px JPEGs instead of tiny palette PNGs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from report_fixtures import CATEGORIES, build_run  # noqa: E402  (the tests' run builder)

from pytest_t2ibias.report.html import write_html  # noqa: E402
from pytest_t2ibias.results import RunResult  # noqa: E402

SIZE_TARGET_MB = 5.0
TIME_TARGET_S = 2.0


def as_photos(run: RunResult, side: int = 512) -> RunResult:
    """The run with each image file replaced by a photo-like JPEG (seeded by the image's position)."""
    photos = run.model_copy(deep=True)
    images = [i for c in photos.categories.values() for i in c.images + (c.baseline.images if c.baseline else [])]
    for k, image in enumerate(images):
        if image.path is None:
            continue
        rng = np.random.default_rng(k)
        coarse = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64)
        pixels = np.clip(smooth + rng.normal(0, 8, (side, side, 3)), 0, 255).astype(np.uint8)
        path = image.path.removesuffix(".png") + ".jpg"
        Image.fromarray(pixels).save(path, quality=92)
        image.path = path
    return photos


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images per category")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full-images", action="store_true", help="also copy the full images beside the page")
    parser.add_argument("--photos", action="store_true", help="512 px photo-like JPEG files instead of marks")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        run = build_run(root, n=args.n)
        kind = "synthetic model, 64 px PNG"
        if args.photos:
            run, kind = as_photos(run), "512 px photo-like JPEG"
        built = time.perf_counter() - started
        print(f"{len(CATEGORIES)} categories x {args.n} images ({kind}); run built in {built:.2f} s")
        times = []
        for i in range(args.rounds):
            started = time.perf_counter()
            path = write_html(run, root / f"report{i}.html", full_images=args.full_images)
            times.append(time.perf_counter() - started)
        page = path.read_bytes()
    size_mb = len(page) / 1e6
    median = statistics.median(times)
    rounds = ", ".join(f"{t:.3f}" for t in times)
    print(f"  html size   {size_mb:.3f} MB  (target < {SIZE_TARGET_MB:g} MB)")
    print(f"  write_html  median {median:.3f} s  (rounds: {rounds})  (target < {TIME_TARGET_S:g} s)")
    print(f"RESULT html_mb={size_mb:.3f} render_s={median:.3f}")
    return {"html_mb": size_mb, "render_s": median}


if __name__ == "__main__":
    main()
