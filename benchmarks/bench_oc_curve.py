"""The gate's operating characteristic: P(fail / inconclusive / pass) against the true worsening.

    python benchmarks/bench_oc_curve.py [--runs 400] [--svg docs/oc-curve.svg]

On the synthetic model, doctor 50% male against candidates 50% + d male (d from 0 to 25 points), n = 200
images, with 20% of the images re-drawn (an irrelevant change on top of the shift) and with fully
independent images (a retrain). Each run is judged by the package exactly as in
``bench_stat_validity.py`` (the whole suite's family: the other categories enter it at p = 1), and the
verdict of three regression checks of different types is tallied against its true worsening as a
multiple of its allowance:

* ``male_share`` (a share of images: exact McNemar test; allowance 0.10),
* ``parity_difference`` (a count metric: paired permutation test; allowance 0.10),
* ``composite`` (a non-linear count metric of entropy and parity; allowance 0.05).

Prints a markdown table per pairing and writes an SVG plot (no plotting library needed).
"""

from __future__ import annotations

import argparse
import html
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_stat_validity as bench

SHIFTS = (0.0, 0.025, 0.05, 0.075, 0.10, 0.125, 0.15, 0.20, 0.25)
METRICS = ("male_share", "parity_difference", "composite")
PAIRINGS = (bench.CHANGED[1], bench.CHANGED[2])  # redraw 20%, independent
N = 200


def tally(job: tuple[bench.Scenario, float, range, int]) -> tuple[str, float, dict[str, Counter[str]]]:
    scenario, shift, runs, seed = job
    ctx = bench._context()
    base_gen, cand_gen = ctx.generator("uniform"), bench.shifted(ctx, round(0.5 + shift, 10))
    out: dict[str, Counter[str]] = {m: Counter() for m in METRICS}
    for run in runs:
        rng = bench.rng_for(seed, "oc", scenario.name, shift, run)
        base_u, cand_u, paired = bench.draw_pair(rng, N, ctx.width("doctor"), scenario)
        side = bench.Side("doctor", ctx.data("doctor", cand_gen, cand_u), ctx.data("doctor", base_gen, base_u), paired)
        for check in bench.judge_run(ctx, [side]):
            if check.kind == "regression" and check.metric in METRICS:
                out[check.metric][check.verdict] += 1
    return scenario.name, shift, out


def true_ratio(ctx: bench.Context, metric_id: str, shift: float) -> float:
    """True worsening over the allowance, from the model's own distributions."""
    base = bench.population_values(ctx, "uniform", "doctor")
    cand = bench.population_values(ctx, "uniform", "doctor", round(0.5 + shift, 10)) if shift else base
    rule = ctx.rules["doctor"][metric_id]
    assert rule.regression is not None
    return bench.worsening(metric_id, bench.MODE, cand[metric_id], base[metric_id]) / rule.regression.allowed(
        base[metric_id]
    )


def svg(curves: dict[str, dict[str, list[tuple[float, float, float]]]], path: Path) -> None:
    """One panel per pairing: x = true worsening / allowance, y = P(fail) solid, P(pass) dashed."""
    width, height, pad = 360, 260, 44
    colours = {"male_share": "#1f77b4", "parity_difference": "#d62728", "composite": "#2ca02c"}
    x_max = 4.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height + 30}" '
             'font-family="sans-serif" font-size="11">']  # fmt: skip
    for panel, (pairing, per_metric) in enumerate(curves.items()):
        ox = panel * width

        def px(x: float, ox: int = ox) -> float:
            return ox + pad + (width - pad - 10) * min(x, x_max) / x_max

        def py(y: float) -> float:
            return 10 + (height - pad - 10) * (1 - y)

        parts.append(f'<text x="{ox + width / 2}" y="{height + 22}" text-anchor="middle">'
                     f'{html.escape(pairing)}, n = {N}: true worsening / allowance</text>')  # fmt: skip
        parts.append(f'<rect x="{px(0)}" y="{py(1)}" width="{px(x_max) - px(0)}" height="{py(0) - py(1)}" '
                     'fill="none" stroke="#888"/>')  # fmt: skip
        for tick in (0, 1, 1.5, 2, 3, 4):
            parts.append(f'<text x="{px(tick)}" y="{py(0) + 14}" text-anchor="middle">{tick:g}</text>')
            parts.append(f'<line x1="{px(tick)}" x2="{px(tick)}" y1="{py(0)}" y2="{py(1)}" stroke="#eee"/>')
        for tick in (0, 0.05, 0.5, 0.9, 1):
            parts.append(f'<text x="{px(0) - 4}" y="{py(tick) + 4}" text-anchor="end">{tick:g}</text>')
            parts.append(f'<line x1="{px(0)}" x2="{px(x_max)}" y1="{py(tick)}" y2="{py(tick)}" stroke="#eee"/>')
        for metric_id, points in per_metric.items():
            for index, dash in ((1, ""), (2, ' stroke-dasharray="4 3"')):
                line = " ".join(f"{px(x):.1f},{py(p[index - 1]):.1f}" for x, *p in points)
                parts.append(
                    f'<polyline points="{line}" fill="none" stroke="{colours[metric_id]}" stroke-width="1.6"{dash}/>'
                )
        for i, metric_id in enumerate(per_metric):
            parts.append(f'<text x="{px(2.2)}" y="{py(0.62) + 14 * i}" fill="{colours[metric_id]}">{metric_id}</text>')
        parts.append(f'<text x="{px(2.2)}" y="{py(0.62) + 14 * 3}">solid: P(fail), dashed: P(pass)</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--svg", type=Path, default=None, help="write the plot here")
    args = parser.parse_args(argv)
    ctx = bench._context()
    jobs = [(s, d, r, args.seed) for s in PAIRINGS for d in SHIFTS for r in bench.chunks(args.runs, 2 * args.workers)]
    counts: dict[tuple[str, float], dict[str, Counter[str]]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, shift, out in pool.map(tally, jobs):
            into = counts.setdefault((name, shift), {m: Counter() for m in METRICS})
            for metric_id, counter in out.items():
                into[metric_id].update(counter)
    curves: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    print(f"doctor at n = {N}, {args.runs} runs per point; P(fail) / P(inconclusive) / P(pass) in %")
    for scenario in PAIRINGS:
        print(f"\n{scenario.name}:\n")
        print("| shift (points) | " + " | ".join(f"{m}: worsening/allowance, fail/inc./pass" for m in METRICS) + " |")
        print("|---|" + "---|" * len(METRICS))
        per_metric: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METRICS}
        for shift in SHIFTS:
            cells = []
            for metric_id in METRICS:
                c = counts[(scenario.name, shift)][metric_id]
                total = max(sum(c.values()), 1)
                ratio = true_ratio(ctx, metric_id, shift)
                fail, warn, ok = (c[v] / total for v in ("fail", "warn", "pass"))
                per_metric[metric_id].append((ratio, fail, ok))
                cells.append(f"{ratio:.2f}x: {100 * fail:.0f} / {100 * warn:.0f} / {100 * ok:.0f}")
            print(f"| {100 * shift:g} | " + " | ".join(cells) + " |")
        curves[scenario.name] = per_metric
    if args.svg:
        svg(curves, args.svg)
        print(f"\nwrote {args.svg}")
    return {"curves": curves}


if __name__ == "__main__":
    main()
