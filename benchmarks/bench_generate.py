"""Generation stage overhead and cache speed-up, measured side by side in one run on the tiny model.

    python benchmarks/bench_generate.py [--images-per-prompt 8] [--batch-size 8] [--rounds 3]

(a) the stage (seeds, adapter, cache writes) against a hand-written loop calling the same pipeline with
the same seeds and batch size: target ratio <= 1.05. (b) a warm-cache rerun against a cold run: target
>= 20x faster. Rounds alternate the variants so drift in machine load hits all of them alike; medians
are reported. (c) the main job warm: ``pytest test_bias.py`` of a copy of ``example_tests/`` (the tiny model
and scorer, 32 images per prompt, its policy and baselines), each run a fresh process, once cold and then
``--rounds`` times with every image and record cached (hypothesis's pytest plugin, a dev dependency of this
repository, left out): target median < 5 s on the idle machine (the model is built only when an image is
missing, the scorer only when a label is). Last line:
``RESULT stage_over_hand=<x> warm_speedup=<x> warm_main_job_seconds=<s>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pytest_t2ibias.generate import ImageCache, generate_images, plan_requests
from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator
from pytest_t2ibias.suites import load_suite


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


EXAMPLE = Path(__file__).resolve().parents[1] / "example_tests"


def main_job_seconds(rounds: int) -> tuple[float, list[float]]:
    """``pytest test_bias.py`` in a copy of the example project (no image cache): the cold run's seconds and
    each warm rerun's, every run a whole process (interpreter, pytest and plugin start-up included)."""
    work = Path(tempfile.mkdtemp(prefix="t2ibias-main-job-"))
    try:
        project = work / "example_tests"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".t2ibias_cache", "__pycache__"))
        env = {**os.environ, "XDG_CACHE_HOME": str(work / "xdg")}  # a fresh memo of the model's settings
        for name in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
            env.pop(name, None)
        # hypothesis is a dev dependency of this repository, not of the package: its pytest plugin (about a
        # second of imports) is left out, as in a user's environment without it
        command = [
            sys.executable,
            "-m",
            "pytest",
            "test_bias.py",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-q",
        ]

        def run() -> float:
            start = time.perf_counter()
            done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"the example's main job failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
            return seconds

        cold = run()
        return cold, [run() for _ in range(rounds)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images-per-prompt", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    suite = load_suite("t2i-biasbench")
    generator = DiffusersGenerator.tiny(batch_size=args.batch_size)
    pipe = generator.pipeline
    requests = plan_requests(suite, args.images_per_prompt)
    prompts = [r.prompt for r in requests]
    seeds = [r.seed for r in requests]

    def hand_loop(lo: int, hi: int) -> None:
        # What a user would write without the plugin: same pipeline, seeds, settings and batch size.
        for start in range(lo, hi, args.batch_size):
            stop = min(start + args.batch_size, hi)
            gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:stop]]
            with torch.inference_mode():
                pipe(
                    prompts[start:stop],
                    generator=gens,
                    num_inference_steps=generator.num_inference_steps,
                    guidance_scale=generator.guidance_scale,
                    height=generator.height,
                    width=generator.width,
                    output_type="pil",
                )

    work = Path(tempfile.mkdtemp(prefix="t2ibias-bench-"))
    names = ["hand loop", "stage, no cache", "stage, cold cache"]
    totals = {name: [0.0] * args.rounds for name in names}
    warm: list[float] = []
    cold_full: list[float] = []
    hand_loop(0, args.batch_size)  # warm-up: first calls pay one-off allocation costs
    try:
        for r in range(args.rounds):
            cache = ImageCache(work / f"round{r}")
            # Interleave the variants batch by batch (rotating their order) so load drift hits all alike.
            for b, lo in enumerate(range(0, len(requests), args.batch_size)):
                hi = min(lo + args.batch_size, len(requests))
                chunk = requests[lo:hi]
                runs = {
                    "hand loop": lambda lo=lo, hi=hi: hand_loop(lo, hi),
                    "stage, no cache": lambda chunk=chunk: generate_images(chunk, generator, None),
                    "stage, cold cache": lambda chunk=chunk, c=cache: generate_images(chunk, generator, c),
                }
                order = names[b % 3 :] + names[: b % 3]
                for name in order:
                    totals[name][r] += timed(runs[name])
            cold_full.append(totals["stage, cold cache"][r])
            warm.append(timed(lambda c=cache: generate_images(requests, generator, c)))
            assert generate_images(requests, generator, cache).new == 0, "warm run generated images"
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"tiny model, {len(requests)} images ({args.images_per_prompt}/prompt), batch {args.batch_size}, "
        f"{args.rounds} rounds, torch threads {torch.get_num_threads()}"
    )
    med = {name: statistics.median(values) for name, values in totals.items()}
    med["warm-cache rerun"] = statistics.median(warm)
    for name, value in med.items():
        runs_ms = ", ".join(f"{v * 1000:.0f}" for v in (totals.get(name) or warm))
        print(f"  {name:<18} median {value * 1000:8.1f} ms   ({runs_ms})")
    overhead = med["stage, cold cache"] / med["hand loop"]
    overhead_nocache = med["stage, no cache"] / med["hand loop"]
    speedup = med["stage, cold cache"] / med["warm-cache rerun"]
    print(f"(a) stage / hand loop, cold cache written: {overhead:.3f}  (target <= 1.05)")
    print(f"    stage / hand loop, cache disabled:    {overhead_nocache:.3f}")
    print(f"(b) cold / warm-cache rerun:               {speedup:.1f}x  (target >= 20x)")
    cold_job, warm_jobs = main_job_seconds(args.rounds)
    warm_job = statistics.median(warm_jobs)
    shown = ", ".join(f"{v:.2f}" for v in warm_jobs)
    print(f"(c) main job (example_tests/test_bias.py): cold {cold_job:.1f} s, warm median {warm_job:.2f} s ({shown})")
    print("    (target warm < 5 s)")
    print(f"RESULT stage_over_hand={overhead:.3f} warm_speedup={speedup:.1f} warm_main_job_seconds={warm_job:.2f}")


if __name__ == "__main__":
    main()
