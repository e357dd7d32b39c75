"""The run's summary: a terminal table (category x key metrics, verdict, delta to baseline) and JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_t2ibias.judge import verdict_of

if TYPE_CHECKING:
    from pytest_t2ibias.plugin import TestOutcome
    from pytest_t2ibias.result import CategoryResult

KEY_METRICS = ("composite", "parity_difference", "entropy_normalized", "cas", "gmr", "hallucination", "unknown_rate")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float | int) and not isinstance(value, bool) else "-"


def summary_lines(payload: dict[str, Any], policy_path: str | None) -> list[str]:
    """Rows of the terminal summary from the results JSON: one per category, then warnings and failures."""
    categories: dict[str, Any] = payload["categories"]
    tests: list[dict[str, Any]] = payload["tests"]
    if not categories:
        return []
    header = ["category", "n", *KEY_METRICS, "verdict", "worst delta"]
    rows = [header]
    for name, cat in categories.items():
        checks = [c for t in tests if t["category"] == name for c in t["checks"]]
        deltas = [c for c in checks if c["kind"] == "regression" and c["delta"] is not None]
        worst = max(deltas, key=lambda c: c["delta"]) if deltas else None
        worst_text = f"{worst['metric']} {worst['delta']:+.3f}" if worst is not None else "-"
        verdicts = {c["verdict"] for c in checks}
        verdict = "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass" if checks else "not gated"
        values = [_fmt(cat["metrics"].get(m, {}).get("value")) for m in KEY_METRICS]
        rows.append([name, str(cat["n"]), *values, verdict, worst_text])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    first = next(iter(categories.values()))
    lines = [f"model {first['model']} | scorer {first['scorer']} | mode {first['mode']}"]
    lines.append(f"policy: {policy_path or 'none (set --t2i-thresholds)'}")
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if any(c["kind"] == "regression" for t in tests for c in t["checks"]):
        lines.append(
            "note: entropy, KL, bias amplification and Vendi are biased at small n; baselines are compared only "
            "at equal n (another n makes a baseline stale), with paired tests over the same seeds"
        )
    for test in tests:
        for check in test["checks"]:
            if check["verdict"] != "pass":
                value = "null" if check["value"] is None else f"{check['value']:.4f}"
                lines.append(
                    f"{check['verdict'].upper()} {test['nodeid']}: {test['category']}.{check['metric']} = {value} "
                    f"(rule {check['threshold']}): {check['note']}"
                )
    return lines


def merge_payloads(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Results of several processes (xdist workers) as one."""
    merged: dict[str, Any] = {"categories": {}, "tests": []}
    for payload in payloads:
        merged["categories"].update(payload.get("categories", {}))
        merged["tests"].extend(payload.get("tests", []))
    merged["tests"].sort(key=lambda t: t["nodeid"])
    return merged


def results_json(results: list[CategoryResult], outcomes: list[TestOutcome]) -> dict[str, Any]:
    """The JSON results file: every category's metrics with intervals, and every test's checks."""
    categories = {}
    for r in results:
        categories[r.category] = {
            "suite": r.suite,
            "suite_hash": r.suite_hash,
            "model": r.model,
            "scorer": r.scorer,
            "mode": r.mode,
            "n": r.n,
            "seed": r.seed,
            "metrics": {
                m: {
                    "value": e.value,
                    "low": e.interval.low if e.interval else None,
                    "high": e.interval.high if e.interval else None,
                    "method": e.interval.method if e.interval else None,
                    "reason": e.reason,
                }
                for m, e in r.metrics.items()
            },
            "images": [
                {"id": rec.image_id, "seed": rec.seed, "path": rec.image_path, "labels": rec.labels}
                for rec in r.records
            ],
        }
    tests = [
        {
            "nodeid": o.nodeid,
            "category": o.category,
            "verdict": verdict_of(o.checks),
            "checks": [
                {
                    "metric": c.metric,
                    "kind": c.kind,
                    "verdict": c.verdict,
                    "value": c.value,
                    "threshold": c.threshold,
                    "baseline": c.baseline,
                    "delta": c.delta,
                    "p_value": c.p_value,
                    "method": c.method,
                    "note": c.note,
                }
                for c in o.checks
            ],
        }
        for o in outcomes
    ]
    return {"categories": categories, "tests": tests}
