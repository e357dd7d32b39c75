"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_t2ibias.results import RunResult
    from pytest_t2ibias.types import MetricValue


def _cell(value: MetricValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "(see below)"
    return f"{value:.4f}"


def format_suite_table(result: RunResult) -> str:
    """Metrics as rows, categories as columns; distributions and null reasons listed after."""
    names = list(result.categories)
    metric_order: list[str] = []
    for cat in result.categories.values():
        metric_order += [m for m in cat.metrics if m not in metric_order]
    header = ["metric"] + [f"{n} (n={result.categories[n].n})" for n in names]
    rows = [header]
    for metric_id in metric_order:
        row = [metric_id]
        for n in names:
            metrics, raw = result.categories[n].metrics, result.categories[n].raw_metrics or {}
            cell = _cell(metrics[metric_id]) if metric_id in metrics else "-"
            if isinstance(raw.get(metric_id), float) and raw[metric_id] != metrics.get(metric_id):
                cell += f" (raw {_cell(raw[metric_id])})"  # corrected with a scorer card: both, side by side
            row.append(cell)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    scorer = f"   scorer: {result.scorer}" if result.scorer else ""
    lines = [f"model: {result.model}   mode: {result.mode}   suite: {result.suite}{scorer}", ""]
    for i, row in enumerate(rows):
        cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for n in names:
        for metric_id, value in result.categories[n].metrics.items():
            if isinstance(value, dict):
                shares = ", ".join(f"{g} {p:.3f}" for g, p in sorted(value.items(), key=lambda kv: -kv[1]))
                lines.append(f"{n} {metric_id}: {shares}")
    for n in names:
        for metric_id, reason in result.categories[n].null_reasons.items():
            lines.append(f"{n} {metric_id}: null ({reason})")
    for n in names:
        card = result.categories[n].scorer_card
        if card is not None:
            kappas = [f"{a} kappa {c.kappa.value:.3f}" for a, c in card.attributes.items() if c.kappa.value is not None]
            lines.append(
                f"{n}: corrected for the scorer's errors with its card ({card.n_images} audit images; "
                f"{', '.join(kappas)})"
            )
    if result.unmatched_rows:
        lines.append(f"{result.unmatched_rows} rows matched no category")
    return "\n".join(lines)
