"""The measure stage at scale: the per-replicate engine (before sufficient statistics) vs the engine now.

    python benchmarks/bench_metrics.py [--records 1000000] [--n 20000] [--boot 1000] [--old-boot 3]
                                       [--replay-rows 100000] [--skip-before]

Doctor images of the synthetic model (a skewed one: 60/30/10 male/female/unknown, every term present with
probability 0.3), drawn as columns straight from a seeded uniform matrix (``SyntheticGenerator.columns``).

* **before**: the engine as it was: a category's records gathered into arrays in Python
  (``category_data``), each metric computed by its scalar function (``tests/reference_metrics.py``, the
  former ``metrics/catalog.py``), and every bootstrap replicate a resample of the images with every metric
  computed again. At 1e6 images its intervals would take minutes: it runs ``--old-boot`` replicates and
  the time of 1000 is extrapolated linearly (replicates cost the same each); everything else is measured.
* **now**: columns in (``CategoryData.from_columns``, labels as integer codes), the images collapsed into
  types with counts, each metric a vectorised function of the counts, every replicate at once by
  multinomial draws over the types (``metrics.result.measure``).

Side by side in one run, on the same images: (1) all metrics with their intervals for one category of
``--records`` images; (2) the intervals alone, B=1000, at ``--n`` images. The point values of both engines
are compared (max absolute difference). Then the engine alone: (3) one category of 2,000 images (the size
a CI gate uses), first call on fresh data; (4) ``t2ibias replay --format json`` of a generated caption CSV
of ``--replay-rows`` rows (the example captions with a seeded phrase and the row number appended: every
caption distinct) in a child process, its wall time and peak RSS (``resource.getrusage`` of the child).

"Now" is the whole measure stage as the plugin runs it: :func:`~pytest_t2ibias.metrics.result.measure`
(every metric, every interval, exact bounds) and the p-value of every hard bound the shipped policy
(``thresholds/t2i-biasbench.yaml``) sets on the category (``bound_p_value``, as ``judge.family.gather``).
Last line: ``RESULT records=... metrics_and_intervals_seconds=... n20000_B1000_intervals_seconds=...
category_n2000_seconds=... replay_rows100000_seconds=... replay_rows100000_peak_mb=...`` (the new engine's
figures; targets < 2 s, < 0.2 s, < 0.05 s, < 10 s, < 1000 MB).
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pytest_t2ibias.errors import MetricUnavailable
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.policy import Policy, load_policy
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import category_data, compute_data
from pytest_t2ibias.metrics.intervals import bootstrap_intervals, bound_p_value
from pytest_t2ibias.metrics.registry import metric_def
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from reference_metrics import REFERENCE  # noqa: E402  (the former scalar metrics, kept as the tests' reference)

CATEGORY = "doctor"
CONFIG = {"presence": 0.3, "categories": {"doctor": {"attribute": {"male": 0.6, "female": 0.3, "unknown": 0.1}}}}


def draw(generator: SyntheticGenerator, n: int, seed: int) -> CategoryData:
    """``n`` doctor images as columns: labels as integer codes into the group names, term presence."""
    width = generator.uniforms(CATEGORY, [0]).shape[1]
    columns = generator.columns(CATEGORY, np.random.default_rng(seed).random((n, width)))
    names, codes = np.unique(columns.labels["gender"], return_inverse=True)
    return CategoryData.from_columns(
        generator.suite, CATEGORY, "strict", labels=codes, label_names=list(names), present=columns.present
    )


def records_of(data: CategoryData) -> list[ImageRecord]:
    """The same images as per-image records (what the engine took before; built without validation)."""
    spec = data.spec
    lists = {name: spec.term_list(name) for name in spec.list_names()}
    hits = {name: [np.flatnonzero(row).tolist() for row in data.present[name]] for name in lists}
    return [
        ImageRecord.model_construct(
            image_id=f"doctor-{i}",
            category=CATEGORY,
            caption=None,
            labels={"gender": label},
            present={name: [lists[name][j] for j in hits[name][i]] for name in lists},
            seed=None,
            prompt=None,
            image_path=None,
            scores={},
            embedding=None,
            clip_score=None,
        )
        for i, label in enumerate(data.labels)
    ]


def old_metrics(data: CategoryData) -> dict[str, float | None]:
    """Every scalar metric by its former scalar function (shares and ratios as the engine resolved them)."""
    out: dict[str, float | None] = {}
    for metric_id in compute_data(data).metrics:
        fn: Callable[[CategoryData], Any] | None = REFERENCE.get(metric_id)
        if fn is None and metric_id in data.spec.shares:
            group = data.spec.shares[metric_id]

            def fn(d: CategoryData, group: str = group) -> Any:
                return d.distribution().as_dict().get(group, 0.0)

        if fn is None:
            definition = metric_def(metric_id, data.spec)
            assert definition is not None
            fn = definition.fn  # captions / embeddings: unchanged data metrics
        try:
            value = fn(data)
        except MetricUnavailable:
            value = None
        out[metric_id] = float(value) if isinstance(value, float | int) else None
    return out


def old_intervals(data: CategoryData, replicates: int, seed: int) -> None:
    """The former bootstrap: each replicate resamples the images and recomputes every metric."""
    rng = np.random.default_rng(seed)
    for _ in range(replicates):
        old_metrics(data.resample(rng.integers(0, data.n, size=data.n)))


def measure_before(suite: Suite, data: CategoryData, n_boot: int, sample: int) -> dict[str, Any]:
    """The former engine on ``data``'s images given as records: times and point values."""
    t_records, records = timed(lambda: records_of(data))
    t_gather, gathered = timed(lambda: category_data(suite, CATEGORY, records, "strict"))
    t_point, values = timed(lambda: old_metrics(gathered))
    t_sample, _ = timed(lambda: old_intervals(gathered, sample, seed=0))
    intervals = t_sample / sample * n_boot
    return {
        "records": t_records,
        "gather": t_gather,
        "point": t_point,
        "sample": t_sample,
        "intervals": intervals,
        "total": t_gather + t_point + intervals,
        "values": values,
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def max_difference(old: dict[str, float | None], new: dict[str, Any]) -> float:
    worst = 0.0
    for metric_id, value in old.items():
        other = new.get(metric_id)
        if value is None or not isinstance(other, float):
            assert value is None and not isinstance(other, float), (metric_id, value, other)
            continue
        worst = max(worst, abs(value - other))
    return worst


def measure_stage(
    suite: Suite, data: CategoryData, n_boot: int, policy: Policy
) -> tuple[CategoryResult, dict[str, float]]:
    """What the plugin runs per category: ``measure`` and the p-value of each hard bound of the policy."""
    result = measure(suite, data, model="synthetic", scorer="synthetic", n_boot=n_boot)
    p_values = {}
    for metric_id, rule in policy.rules_for(CATEGORY).items():
        if not isinstance(result.value(metric_id), float):
            continue
        for bound, side in ((rule.max, "max"), (rule.min, "min")):
            if bound is not None:
                key = f"{metric_id}:{side}"
                p_values[key] = bound_p_value(data, metric_id, bound, side, seed=result.seed)  # type: ignore[arg-type]
    return result, p_values


def fresh_columns(suite: Suite, data: CategoryData) -> CategoryData:
    """The same images as new columns (no cache carried over: a first call)."""
    codes = data.label_codes()
    return CategoryData.from_columns(
        suite, CATEGORY, "strict", labels=codes.codes, label_names=list(codes.names), present=data.present
    )


EXTRAS = ("smiling", "outdoors", "at night", "in a city", "with a dog", "wearing glasses", "in the rain")


def write_captions(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` caption rows from the example captions (category by image name), each made distinct."""
    with open(ROOT / "example_tests" / "data" / "sample_captions.csv", newline="", encoding="utf-8") as handle:
        template = list(csv.reader(handle))[1:]
    rng = np.random.default_rng(seed)
    extra = rng.integers(0, len(EXTRAS), size=rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption"])
        for i in range(rows):
            name, caption = template[i % len(template)]
            category = name.rsplit("_", 1)[0]
            writer.writerow([f"{category}_{i}.png", f"{caption.rstrip('.')}, {EXTRAS[extra[i]]}, image {i}."])


#: Runs the replay in a child and reports on it. It is itself a small process: a child's peak RSS
#: (``ru_maxrss``) includes the size of the process it was forked from, which here is a few MB, not the
#: benchmark's gigabytes of records.
_LAUNCHER = """
import resource, subprocess, sys, time
code = "import sys; from pytest_t2ibias.cli import main; sys.exit(main(sys.argv[1:]))"
start = time.perf_counter()
done = subprocess.run([sys.executable, "-c", code, "replay", sys.argv[1], "--format", "json"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(done.stderr[-2000:] if done.returncode else "")
print(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, done.returncode)
"""


def replay_child(path: Path) -> tuple[float, float, float, int]:
    """``t2ibias replay --format json`` of ``path`` in a child process: wall seconds, peak RSS (MB, from
    ``resource.getrusage`` of the child; KB on Linux), CPU seconds, exit code."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(path)], capture_output=True, text=True, check=False)
    if done.stderr:
        print(done.stderr[-2000:], file=sys.stderr)
    seconds, peak_mb, cpu, code = done.stdout.split()
    return float(seconds), float(peak_mb), float(cpu), int(code)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="images of the large category")
    parser.add_argument("--n", type=int, default=20_000, help="images for the intervals-only comparison")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--old-boot", type=int, default=3, help="replicates the old engine runs at --records")
    parser.add_argument("--replay-rows", type=int, default=100_000, help="rows of the generated caption file")
    parser.add_argument("--skip-before", action="store_true", help="time the new engine only (no old engine)")
    args = parser.parse_args(argv)
    suite = load_suite("t2i-biasbench")
    generator = SyntheticGenerator(suite, CONFIG)
    policy = load_policy(ROOT / "thresholds" / "t2i-biasbench.yaml", suite)  # read once, as a session does

    print(f"doctor category, synthetic model (60/30/10 male/female/unknown, terms present 30%), B = {args.boot}")
    big = draw(generator, args.records, seed=1)
    print(f"(1) {args.records} images: every metric with its interval")
    before = None if args.skip_before else measure_before(suite, big, args.boot, args.old_boot)
    t_new, (result, p_values) = timed(lambda: measure_stage(suite, fresh_columns(suite, big), args.boot, policy))
    new_values = {m: e.value for m, e in result.metrics.items()}
    with_interval = sum(e.interval is not None for e in result.metrics.values())
    diff_big = max_difference(before["values"], new_values) if before is not None else 0.0
    scale = args.boot / args.old_boot
    if before is not None:
        print(
            f"    before: gather records {before['gather']:6.2f} s + point values {before['point']:6.2f} s + "
            f"intervals {before['intervals']:7.1f} s ({args.old_boot} replicates in {before['sample']:.2f} s, x "
            f"{scale:.0f}) = {before['total']:7.1f} s   (building the {args.records} records first: "
            f"{before['records']:.1f} s more)"
        )
    ratio = f"({before['total'] / t_new:.0f}x)   " if before is not None else ""
    print(
        f"    now:    columns in, {len(result.metrics)} metrics, {with_interval} intervals, {len(p_values)} bound "
        f"p-values = {t_new:7.2f} s   {ratio}target < 2 s"
    )
    print(f"    point values: max |before - now| = {diff_big:.1e} over {len(new_values)} metrics")

    small = draw(generator, args.n, seed=2)
    t_old_small = None if args.skip_before else timed(lambda: old_intervals(small, args.boot, seed=0))[0]
    t_new_small, intervals = timed(lambda: bootstrap_intervals(small, args.boot, seed=0))
    diff_small = max_difference(old_metrics(small), compute_data(small).metrics)
    print(f"(2) {args.n} images: bootstrap intervals only, B = {args.boot}")
    if t_old_small is not None:
        print(f"    before: {t_old_small:7.2f} s")
    ratio = f"({t_old_small / t_new_small:.0f}x)   " if t_old_small is not None else ""
    print(
        f"    now:    {t_new_small:7.3f} s   {ratio}target < 0.2 s; "
        f"{len(intervals)} intervals; point values max |before - now| = {diff_small:.1e}"
    )

    gate = draw(generator, 2000, seed=3)
    t_gate, _ = timed(lambda: measure_stage(suite, fresh_columns(suite, gate), args.boot, policy))
    print(f"(3) 2000 images (a CI gate's category): measure stage, first call = {t_gate:.3f} s   target < 0.05 s")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "captions.csv"
        write_captions(path, args.replay_rows)
        t_replay, peak_mb, cpu, code = replay_child(path)
    print(
        f"(4) t2ibias replay --format json of {args.replay_rows} generated caption rows (child process): "
        f"{t_replay:.1f} s ({cpu:.1f} s CPU), peak RSS {peak_mb:.0f} MB, exit {code}   targets < 10 s, < 1000 MB"
    )
    assert diff_big <= 1e-12 and diff_small <= 1e-12 and math.isfinite(t_new) and code == 0
    print(
        f"RESULT records={args.records} metrics_and_intervals_seconds={t_new:.3f} "
        f"n{args.n}_B{args.boot}_intervals_seconds={t_new_small:.3f} category_n2000_seconds={t_gate:.3f} "
        f"replay_rows{args.replay_rows}_seconds={t_replay:.1f} replay_rows{args.replay_rows}_peak_mb={peak_mb:.0f}"
    )
    return {
        "metrics_and_intervals_seconds": t_new,
        "intervals_seconds": t_new_small,
        "max_diff": diff_big,
        "category_n2000_seconds": t_gate,
        "replay_seconds": t_replay,
        "replay_peak_mb": peak_mb,
    }


if __name__ == "__main__":
    main()
