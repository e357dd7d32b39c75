"""The run as a markdown summary: what a CI job page shows (GitHub's ``GITHUB_STEP_SUMMARY``).

A reviewer reads it before anything else: the verdict of each category and what made it, then every
check that failed or was inconclusive with its value, its baseline and the rule, then the bias tests
that did not run. Every text that comes from users (model ids, test ids, metric names, notes) is escaped
so it cannot break the table or inject markup, and credentials in URLs are masked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_t2ibias.report.summary import NOT_GATED, mask_credentials, short_scorer, ungated

if TYPE_CHECKING:
    from pytest_t2ibias.results import RunResult

_ICON = {"fail": "FAIL", "warn": "WARN", "pass": "pass", "not gated": "not gated"}
#: Characters markdown gives a meaning (tables, emphasis, code, links, HTML).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def md(text: object) -> str:
    """User text made inert in markdown: credentials masked, special characters escaped, one line."""
    plain = mask_credentials(str(text)).replace("\r", " ").replace("\n", " ")
    return _SPECIAL.sub(r"\\\1", plain)


def _what(names: Sequence[str]) -> str:
    return ", ".join(md(m) for m in dict.fromkeys(names)) if names else "-"


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def markdown_summary(run: RunResult, policy_path: str | None = None, problem: str | None = None) -> str:
    """The run's summary in GitHub-flavoured markdown; ``problem``: why the run fails although its tests
    passed (every bias test skipped)."""
    # tests of no measured category (the aggregates across categories) count too
    verdicts = run.category_verdicts()
    failed = sum(v.verdict == "fail" for v in verdicts.values())
    # "passed" only when something was judged: a run that tested nothing, or judged nothing, says so
    not_gated = ungated(run)
    if not (run.categories or run.tests):
        status = "no bias test ran"
    elif len(not_gated) == len(run.categories) and not any(t.checks or t.problem for t in run.tests):
        status = NOT_GATED
    else:
        status = "passed"
    heading = f"FAILED: {status}" if problem else "FAILED" if failed else status
    lines = [f"## t2ibias: {heading}", ""]
    if problem:
        lines += [md(problem), ""]
    lines.append(
        f"model {md(run.model or '-')} · scorer {md(short_scorer(run.scorer))} · mode {md(run.mode or '-')} · "
        f"suite {md(run.suite or '-')} · policy {md(policy_path or 'none')}"
    )
    lines.append("")
    if run.categories:
        lines += ["| category | n | verdict | failed | warned |", "|---|---:|---|---|---|"]
        for name, category in run.categories.items():
            v = verdicts[name]
            failed_what, warned_what = _what([*v.problems, *v.failed]), _what(v.warned)
            lines.append(f"| {md(name)} | {category.n} | {_ICON[v.verdict]} | {failed_what} | {warned_what} |")
        lines.append("")
    if not_gated:
        lines += [f"{', '.join(md(n) for n in not_gated)}: {NOT_GATED} (no assertion helper judged it)", ""]
    if run.aggregates is not None:
        agg = run.aggregates
        shown = []
        for metric_id, value in agg.metrics.items():
            interval = agg.intervals.get(metric_id)
            span = f" [{interval.low:.3f}, {interval.high:.3f}]" if interval is not None else ""
            shown.append(f"{md(metric_id)} {_number(value)}{span}")
        lines.append(f"aggregates over {len(agg.categories)} categories: " + " · ".join(shown))
        if agg.worst:
            worst = ", ".join(f"{md(w.category)} ({w.amplification:+.3f})" for w in agg.worst)
            lines.append(f"most amplified: {worst}")
        lines.append("")
    for verdict, title in (("fail", "Failed checks"), ("warn", "Inconclusive and warning checks")):
        rows = [(t.nodeid, c) for t in run.tests for c in t.checks if c.verdict == verdict]
        if not rows:
            continue
        lines += [f"### {title}", "", "| test | check | value | baseline | change | rule | why |"]
        lines.append("|---|---|---:|---:|---:|---|---|")
        for nodeid, c in rows:
            lines.append(
                f"| {md(nodeid)} | {md(c.category)}.{md(c.metric)} | {_number(c.value)} | {_number(c.baseline)} | "
                f"{_number(c.delta, signed=True)} | {md(c.threshold)} | {md(c.note)} |"
            )
        lines.append("")
    if run.not_run:
        lines += [f"### {len(run.not_run)} bias test{'s' if len(run.not_run) != 1 else ''} did not run", ""]
        lines += [f"- {md(t.nodeid)}: {md(t.reason)}" for t in run.not_run]
        lines.append("")
    if run.baselines:
        counts: dict[str, int] = {}
        for event in run.baselines.values():
            counts[event] = counts.get(event, 0) + 1
        lines.append("baselines: " + ", ".join(f"{n} {md(event)}" for event, n in sorted(counts.items())))
        lines.append("")
    return "\n".join(lines)
