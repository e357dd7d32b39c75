"""The run's terminal summary: a table (category x key metrics, verdict and what made it, the worst change
against the baseline), then every check that did not pass, from the one result model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_t2ibias.masking import mask_credentials as mask_credentials  # re-exported for the renderers

if TYPE_CHECKING:
    from pytest_t2ibias.judge.verdicts import Check
    from pytest_t2ibias.results import AggregatesModel, CategoryVerdict, RunResult

#: What a category with no check says, wherever the run is summarised (terminal, step summary, HTML).
NOT_GATED = "not gated by a policy or baseline"


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float | int) and not isinstance(value, bool) else "-"


def short_scorer(scorer: str | None) -> str:
    """A scorer id readable at a glance: its name and model, without its settings (the full id stays in
    the JSON report).

    Example:
        >>> short_scorer("clip:tiny-open_clip|margin=0.0|person=-inf")
        'clip:tiny-open_clip'
    """
    return (scorer.split("|", 1)[0] or scorer) if scorer else "-"


def _verdict_cell(verdict: CategoryVerdict) -> str:
    """The category's verdict, and which metrics made it (so a warning says what warned)."""
    if verdict.problems:
        return f"fail ({', '.join(verdict.problems)})"
    metrics = verdict.failed if verdict.verdict == "fail" else verdict.warned if verdict.verdict == "warn" else ()
    if not metrics:
        return verdict.verdict
    shown = ", ".join(metrics[:3]) + (f" +{len(metrics) - 3} more" if len(metrics) > 3 else "")
    return f"{verdict.verdict} ({shown})"


def _change_cell(checks: list[Check]) -> str:
    """The regression check that got worst, with its value against the baseline's; a metric the baseline
    measured and the run could not comes first (a lost measurement, not a pass), and "no worse than
    baseline" is said only when every checked metric has a value."""
    lost = [c for c in checks if c.kind == "regression" and c.value is None and c.baseline is not None]
    if lost:
        more = f" +{len(lost) - 1} more" if len(lost) > 1 else ""
        return f"{lost[0].metric} no value vs {lost[0].baseline:.3f}{more}"
    compared = [c for c in checks if c.kind == "regression" and c.delta is not None and c.baseline is not None]
    if not compared:
        return "-"
    worst = max(compared, key=lambda c: c.delta or 0.0)
    unmeasured = list(dict.fromkeys(c.metric for c in checks if c.kind == "missing"))
    if (worst.delta or 0.0) <= 0:
        return f"no worse where measured; no value: {', '.join(unmeasured)}" if unmeasured else "no worse than baseline"
    return f"{worst.metric} {worst.value:.3f} vs {worst.baseline:.3f} (worse by {worst.delta:.3f})"


def ungated(run: RunResult) -> list[str]:
    """The categories the run measured but no check judged (their tests called no assertion helper, or
    the helpers had no rule to apply): plain asserts may pass them, but no policy or baseline did."""
    verdicts = run.category_verdicts()
    return [name for name in run.categories if verdicts[name].verdict == "not gated"]


#: Most metric columns the table shows (the gated ones first); the JSON and HTML reports have every metric.
MAX_COLUMNS = 6
#: Most checks named on a test's one summary line; the failure message and the reports have them all.
MAX_CHECKS_PER_LINE = 4


def _columns(run: RunResult) -> list[str]:
    """The metrics the run gated (in the order its checks name them), else the key metrics some category
    has a value of (the registry's ``headline`` metrics, by rank): a suite's own gated metrics show
    (occupations: ``female_share``, ``amplification_reference``), and no column is all dashes."""
    gated = list(dict.fromkeys(c.metric for t in run.tests for c in t.checks if c.metric in _measured(run)))
    if gated:
        return gated[:MAX_COLUMNS]
    from pytest_t2ibias.metrics import catalog  # noqa: F401 (registers the built-in metrics)
    from pytest_t2ibias.metrics.registry import headline_metrics

    return [m for m in headline_metrics() if m in _measured(run)][:MAX_COLUMNS]


def _measured(run: RunResult) -> set[str]:
    return {m for cat in run.categories.values() for m, v in cat.metrics.items() if isinstance(v, float | int)}


#: Most characters of a check's note on the summary line.
MAX_NOTE = 80


def short_note(note: str) -> str:
    """A check's note up to its first ``;``, without parentheses, at most :data:`MAX_NOTE` characters (the
    test, the p-value and the advice stay in the failure message and the reports).

    Example:
        >>> short_note("real regression: beyond the margin and significant (mcnemar over 100 pairs, adjusted p=1e-05)")
        'real regression: beyond the margin and significant'
    """
    out, depth = [], 0
    for char in note.split(";", 1)[0]:
        depth += char == "("
        if depth == 0:
            out.append(char)
        depth -= char == ")" and depth > 0
    text = " ".join("".join(out).split()).replace(" ,", ",").replace(" :", ":").strip()
    return text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 3].rstrip() + "..."


def _check_text(category: str, check: Check) -> str:
    value = "null" if check.value is None else f"{check.value:.4f}"
    base = "" if check.baseline is None else f", baseline {check.baseline:.4f}"
    return f"{category}.{check.metric} = {value}{base} (rule {check.threshold}): {short_note(check.note)}"


def test_lines(run: RunResult) -> list[str]:
    """One line per bias test that did not pass: its worst check in full (failures first), then the other
    checks that did not pass by metric and reason only (the failure message above and the reports have
    each check in full)."""
    lines = []
    for test in run.tests:
        shown = [c for c in test.checks if c.verdict == "fail"] + [c for c in test.checks if c.verdict == "warn"]
        if not shown:
            continue
        others = list(dict.fromkeys(_check_brief(c) for c in shown[1:]))
        also = ", ".join(others[:MAX_CHECKS_PER_LINE])
        if len(others) > MAX_CHECKS_PER_LINE:
            also += f" +{len(others) - MAX_CHECKS_PER_LINE} more"
        rest = f"; also {also}" if also else ""
        lines.append(f"{shown[0].verdict.upper()} {test.nodeid}: {_check_text(test.category, shown[0])}{rest}")
    return lines


def _check_brief(check: Check) -> str:
    """``metric (reason)``: a check named by its metric and the first words of its note."""
    against = " vs the anchor" if check.kind == "anchor" else ""
    return f"{check.verdict} {check.metric}{against} ({short_note(check.note).split(':', 1)[0].strip()})"


def summary_lines(run: RunResult, policy_path: str | None, problem: str | None = None) -> list[str]:
    """Rows of the terminal summary: one per judged category (the metrics the run gated as columns), the
    categories nothing judged on one line, then one line per test that did not pass; ``problem``: why the
    run fails although its tests passed (every bias test skipped)."""
    categories = run.categories
    tests = run.tests
    failed = [f"FAILED {problem}"] if problem else []
    if not categories:
        return _not_run_lines(run) + failed
    columns = _columns(run)
    header = ["category", "n", *columns, "verdict", "worst change vs baseline"]
    rows = [header]
    loose = ungated(run)
    verdicts = run.category_verdicts()
    for name, cat in categories.items():
        if name in loose and len(categories) > 1:
            continue  # one line for all of them, below
        checks = [c for t in tests if t.category == name for c in t.checks]
        values = [_fmt(cat.metrics.get(m)) for m in columns]
        rows.append([name, str(cat.n), *values, _verdict_cell(verdicts[name]), _change_cell(checks)])
    first = next(iter(categories.values()))
    lines = [f"model {first.model} | scorer {short_scorer(first.scorer)} | mode {first.mode}"]
    lines.append(f"policy: {policy_path or 'none (set --t2i-thresholds)'}")
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for i, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
    lines += test_lines(run)
    if loose:
        shown = ", ".join(loose[:12]) + (f" +{len(loose) - 12} more" if len(loose) > 12 else "")
        lines.append(
            f"NOT GATED {shown}: {NOT_GATED} (no assertion helper judged {'them' if len(loose) > 1 else 'it'}; "
            "set t2ibias_require_gate = true to fail such a test)"
        )
    if run.aggregates is not None:
        lines += aggregate_lines(run.aggregates)
    return lines + _not_run_lines(run) + failed


def aggregate_lines(aggregates: AggregatesModel) -> list[str]:
    """The aggregates across categories, one line each, and the most amplified categories."""
    lines = [f"aggregates over {len(aggregates.categories)} categories (95% intervals):"]
    for metric_id, value in aggregates.metrics.items():
        interval = aggregates.intervals.get(metric_id)
        shown = "n/a" if value is None else f"{value:.3f}"
        if interval is not None:
            shown += f" [{interval.low:.3f}, {interval.high:.3f}]"
        lines.append(f"  {metric_id}: {shown}")
    if aggregates.worst:
        worst = ", ".join(f"{w.category} ({w.amplification:+.3f})" for w in aggregates.worst)
        lines.append(f"  most amplified: {worst}")
    return lines


def _not_run_lines(run: RunResult) -> list[str]:
    if not run.not_run:
        return []
    lines = [f"{len(run.not_run)} bias test{'s' if len(run.not_run) != 1 else ''} did not run:"]
    lines += [f"  SKIPPED {t.nodeid}: {t.reason}" for t in run.not_run]
    return lines


def shown_path(path: Path) -> str:
    """``path`` relative to the current folder when it is under it (what a user types), else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def baseline_lines(run: RunResult, unused: list[Path], pruned: list[Path], refused: str | None) -> list[str]:
    """What the run did with baselines, counted and with the files that need attention named."""
    if not run.baselines and not unused and not pruned:
        return []
    counts = Counter(run.baselines.values())
    order = ("compared", "created", "updated", "unchanged", "migrated", "missing", "stale", "corrupt")
    lines = ["baselines: " + ", ".join(f"{counts[e]} {e}" for e in order if counts[e])]
    for path, event in run.baselines.items():
        if event in ("created", "updated", "migrated"):
            lines.append(f"  {event.upper()} {path}")
            lines += [f"    {change}" for change in run.baseline_changes.get(path, [])]
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
