"""The run's terminal summary: a table (category x key metrics, verdict, delta to baseline), from the
one result model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_t2ibias.results import RunResult

KEY_METRICS = ("composite", "parity_difference", "entropy_normalized", "cas", "gmr", "hallucination", "unknown_rate")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float | int) and not isinstance(value, bool) else "-"


def summary_lines(run: RunResult, policy_path: str | None) -> list[str]:
    """Rows of the terminal summary: one per category, then warnings and failures."""
    categories = run.categories
    tests = run.tests
    if not categories:
        return _not_run_lines(run)
    header = ["category", "n", *KEY_METRICS, "verdict", "worst delta"]
    rows = [header]
    for name, cat in categories.items():
        checks = [c for t in tests if t.category == name for c in t.checks]
        deltas = [c for c in checks if c.kind == "regression" and c.delta is not None]
        worst = max(deltas, key=lambda c: c.delta or 0.0) if deltas else None
        worst_text = f"{worst.metric} {worst.delta:+.3f}" if worst is not None and worst.delta is not None else "-"
        verdicts = {c.verdict for c in checks}
        verdict = "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass" if checks else "not gated"
        values = [_fmt(cat.metrics.get(m)) for m in KEY_METRICS]
        rows.append([name, str(cat.n), *values, verdict, worst_text])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    first = next(iter(categories.values()))
    lines = [f"model {first.model} | scorer {first.scorer} | mode {first.mode}"]
    lines.append(f"policy: {policy_path or 'none (set --t2i-thresholds)'}")
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if any(c.kind == "regression" for t in tests for c in t.checks):
        lines.append(
            "note: entropy, KL, bias amplification and Vendi are biased at small n; baselines are compared only "
            "at equal n (another n makes a baseline stale), with paired tests over the same seeds"
        )
    for test in tests:
        for check in test.checks:
            if check.verdict != "pass":
                value = "null" if check.value is None else f"{check.value:.4f}"
                lines.append(
                    f"{check.verdict.upper()} {test.nodeid}: {test.category}.{check.metric} = {value} "
                    f"(rule {check.threshold}): {check.note}"
                )
    return lines + _not_run_lines(run)


def _not_run_lines(run: RunResult) -> list[str]:
    if not run.not_run:
        return []
    lines = [f"{len(run.not_run)} bias test{'s' if len(run.not_run) != 1 else ''} did not run:"]
    lines += [f"  SKIPPED {t.nodeid}: {t.reason}" for t in run.not_run]
    return lines


def baseline_lines(run: RunResult, unused: list[Path], pruned: list[Path], refused: str | None) -> list[str]:
    """What the run did with baselines, counted and with the files that need attention named."""
    if not run.baselines and not unused and not pruned:
        return []
    counts = Counter(run.baselines.values())
    order = ("compared", "created", "updated", "unchanged", "missing", "stale", "corrupt")
    lines = ["baselines: " + ", ".join(f"{counts[e]} {e}" for e in order if counts[e])]
    lines += [f"  {event.upper()} {path}" for path, event in run.baselines.items() if event in ("created", "updated")]
    lines += [f"  PRUNED {path}" for path in pruned]
    if unused and not pruned:
        lines.append(
            f"  {len(unused)} unused (no collected test owns them; kept; remove them with --t2i-prune-baselines "
            "on a full, passing run):"
        )
        lines += [f"    {path}" for path in unused]
    if refused:
        lines.append(f"  {refused}")
    return lines
