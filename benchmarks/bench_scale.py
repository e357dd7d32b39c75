"""Scale-out on the CPU, measured side by side in one run on the tiny model (gloo, one thread per process).

    python benchmarks/bench_scale.py            # 160 images per run
    python benchmarks/bench_scale.py --quick    # 32 images: checks that everything runs (CI)

(1) 1 rank vs 2 ranks (``torchrun --nproc_per_node 2``): the same ``t2ibias evaluate`` on a cold cache;
    the JSON printed and every cache file must be byte-identical. Speed-up = throughput of 2 ranks / of
    1 rank, where throughput is the slope of wall time over images: each command runs on a cold cache at
    the full size and at a quarter of it, and the images added divided by the seconds added is the rate
    (medians of ``--repeats`` runs, default 3: one run's start-up varies by a second or so, which moves
    a slope over 20 s by 10%).
    The fixed costs (imports, model build, process-group setup, the gather) are in both runs and cancel;
    a warm-cache re-run is not a fair zero point, because 2 ranks pay their setup there too. The raw
    wall-clock ratio is printed beside it.
(2) work amplification = images generated / distinct images in the cache, for ``torchrun`` 2 ranks,
    ``pytest -n 2`` (two bias tests, one per category, one cache), and 3 concurrent ``t2ibias generate``
    processes on one cold cache (target <= 1.05 everywhere).
(3) overlap: end-to-end time of a category with generation and scoring overlapped / sequential
    (target on the CPU: no slower, <= 1.0 within noise).

Last line: ``RESULT ranks2_identical=<yes|no> amplification_max=<x> speedup_2ranks=<x> overlap_ratio=<x>``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

CATEGORIES = ["doctor", "nature"]


def _env(work: Path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "XDG_CACHE_HOME": str(work / "xdg")}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    return env


def _cli(ranks: int) -> list[str]:
    if ranks == 1:
        return [sys.executable, "-m", "pytest_t2ibias.cli"]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "-m", "pytest_t2ibias.cli"]


def _evaluate(ranks: int, cwd: Path, per_prompt: int) -> tuple[float, str]:
    """Wall seconds and stdout of ``t2ibias evaluate`` (tiny model and scorer) in ``cwd`` (cache ``cache``)."""
    cwd.mkdir(parents=True, exist_ok=True)
    command = [
        *_cli(ranks),
        "evaluate",
        "--model",
        "tiny",
        "--scorer",
        "tiny",
        *[arg for category in CATEGORIES for arg in ("--category", category)],
        "--images-per-prompt",
        str(per_prompt),
        "--batch-size",
        "4",
        "--cache",
        "cache",
        "--format",
        "json",
        "-q",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=_env(cwd), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _generated(output: str) -> int:
    """Images a ``t2ibias generate`` run made, from its summary lines."""
    found = re.search(r"^(\d+) generated", output, re.MULTILINE)
    if found:
        return int(found.group(1))
    summary = re.search(r": (\d+) new, \d+ cached$", output, re.MULTILINE)
    if summary is None:
        raise SystemExit(f"unexpected t2ibias generate output: {output!r}")
    return int(summary.group(1))


def _generate_command(ranks: int, per_prompt: int) -> list[str]:
    categories = [arg for category in CATEGORIES for arg in ("--category", category)]
    options = ["--images-per-prompt", str(per_prompt), "--batch-size", "4", "--cache", "cache", "-q"]
    return [*_cli(ranks), "generate", "--model", "tiny", *categories, *options]


def amplification_torchrun(work: Path, per_prompt: int) -> float:
    work.mkdir(parents=True)
    done = subprocess.run(
        _generate_command(2, per_prompt), cwd=work, env=_env(work), capture_output=True, text=True, check=True
    )
    distinct = len(list((work / "cache").rglob("*.png")))
    return _generated(done.stdout) / distinct


def amplification_processes(work: Path, per_prompt: int, count: int = 3) -> float:
    work.mkdir(parents=True)
    procs = [
        subprocess.Popen(
            _generate_command(1, per_prompt), cwd=work, env=_env(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"t2ibias generate failed: {err.decode()[-2000:]}")
        outputs.append(out.decode())
    distinct = len(list((work / "cache").rglob("*.png")))
    return sum(_generated(out) for out in outputs) / distinct


_COUNTING = """
import os
from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

_generate = DiffusersGenerator.generate


def generate(self, prompts, seeds):
    with open(os.environ["T2IBIAS_COUNTS"], "a") as handle:
        handle.write(f"{len(prompts)}\\n")
    return _generate(self, prompts, seeds)


DiffusersGenerator.generate = generate
"""

_TESTS = """
import pytest


@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert len(t2ibias_result.records) == {n}


@pytest.mark.t2ibias(category="nature")
def test_nature(t2ibias_result):
    assert len(t2ibias_result.records) == {n}
"""


def amplification_xdist(work: Path, per_prompt: int) -> float:
    work.mkdir(parents=True)
    (work / "conftest.py").write_text(_COUNTING)
    (work / "test_bias.py").write_text(textwrap.dedent(_TESTS.format(n=per_prompt)))
    counts = work / "counts.txt"
    env = {**_env(work), "T2IBIAS_COUNTS": str(counts)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--t2i-model", "tiny"]
    command += ["--t2i-scorer", "tiny", "--t2i-images-per-prompt", str(per_prompt), "--t2i-batch-size", "4"]
    command += ["--t2i-cache", "cache", "--rootdir", str(work)]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pytest -n 2 failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    generated = sum(int(line) for line in counts.read_text().split())
    return generated / len(list((work / "cache").rglob("??/*.png")))


def overlap_ratio(per_prompt: int, rounds: int) -> tuple[float, float, float]:
    """(overlapped / sequential, overlapped s, sequential s): medians, rounds alternating the two."""
    import torch

    from pytest_t2ibias.annotate.factory import load_annotator
    from pytest_t2ibias.generate.factory import load_generator
    from pytest_t2ibias.pipeline import evaluate_suite
    from pytest_t2ibias.suites import load_suite

    torch.set_num_threads(1)
    suite = load_suite("t2i-biasbench")
    generator = load_generator("tiny", suite, batch_size=4)
    annotator = load_annotator("tiny", suite)
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds + 1):
        for overlap in (True, False) if r % 2 else (False, True):
            start = time.perf_counter()
            evaluate_suite(
                suite, generator, annotator, images_per_prompt=per_prompt, categories=["doctor"], overlap=overlap
            )
            if r:  # round 0 warms up
                times[overlap].append(time.perf_counter() - start)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return on / off, on, off


def main(argv: Sequence[str] | None = None) -> dict[str, float | bool]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that everything runs")
    parser.add_argument("--images-per-prompt", type=int, default=None, help="per category (default 80; quick 16)")
    parser.add_argument("--rounds", type=int, default=None, help="overlap rounds (default 3; quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per rank count and size (default 3; quick 1)")
    args = parser.parse_args(argv)
    per_prompt = args.images_per_prompt or (16 if args.quick else 80)
    rounds = args.rounds or (1 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="t2ibias-scale-") as tmp:
        work = Path(tmp)
        small = max(per_prompt // 4, 1)
        timings: dict[tuple[int, int], list[float]] = {}
        outputs: dict[tuple[int, int], str] = {}
        for r in range(repeats):  # each run on a cold cache of its own; the order alternates
            for ranks in (1, 2) if r % 2 == 0 else (2, 1):
                for size in (per_prompt, small):
                    seconds, out = _evaluate(ranks, work / f"r{r}-{ranks}-{size}", size)
                    timings.setdefault((ranks, size), []).append(seconds)
                    if size == per_prompt:
                        outputs[(r, ranks)] = out
        identical = all(outputs[(r, 1)] == outputs[(r, 2)] for r in range(repeats)) and all(
            _files(work / f"r{r}-1-{per_prompt}" / "cache") == _files(work / f"r{r}-2-{per_prompt}" / "cache")
            for r in range(repeats)
        )
        cold1, cold2 = (statistics.median(timings[(k, per_prompt)]) for k in (1, 2))
        small1, small2 = (statistics.median(timings[(k, small)]) for k in (1, 2))
        added = len(CATEGORIES) * (per_prompt - small)
        rate1 = added / max(cold1 - small1, 1e-9)
        rate2 = added / max(cold2 - small2, 1e-9)
        speedup = rate2 / rate1
        print(
            f"tiny model and scorer, {len(CATEGORIES)} categories x {per_prompt} images, batch 4, 1 thread per process"
        )
        print(
            f"(1) medians of {repeats}: 1 rank: {cold1:.1f} s ({small1:.1f} s at {small} per category) = "
            f"{rate1:.2f} images/s;  2 ranks: {cold2:.1f} s ({small2:.1f} s) = {rate2:.2f} images/s"
        )
        print(
            f"    speed-up of 2 ranks (throughput, fixed costs cancel): {speedup:.2f}x (target >= 1.6); "
            f"wall clock {cold1 / cold2:.2f}x"
        )
        print(f"    2 ranks byte-identical to 1 (JSON and every cache file): {'yes' if identical else 'no'}")
        amp = {
            "torchrun 2 ranks": amplification_torchrun(work / "amp-torchrun", per_prompt),
            "pytest -n 2": amplification_xdist(work / "amp-xdist", per_prompt),
            "3 concurrent CLI processes": amplification_processes(work / "amp-cli", per_prompt),
        }
        print("(2) work amplification (images generated / distinct images; target <= 1.05):")
        for name, value in amp.items():
            print(f"    {name:<28} {value:.3f}")
    ratio, on, off = overlap_ratio(per_prompt, rounds)
    print(f"(3) overlap, doctor x {per_prompt}: overlapped {on:.2f} s / sequential {off:.2f} s = {ratio:.3f}")
    amplification = max(amp.values())
    print(
        f"RESULT ranks2_identical={'yes' if identical else 'no'} amplification_max={amplification:.3f} "
        f"speedup_2ranks={speedup:.2f} overlap_ratio={ratio:.3f}"
    )
    return {"identical": identical, "amplification": amplification, "speedup": speedup, "overlap_ratio": ratio}


if __name__ == "__main__":
    main()
