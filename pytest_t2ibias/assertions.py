"""Assertion helpers for bias tests.

Each helper fails with a message that names the category, the metric, the value with its interval,
the threshold, the baseline value if any, and the images that drive the failure. A bound whose
interval straddles the threshold does not fail: it warns (shown in the run's summary), because more
images are needed to tell (see docs/plugin.md for the rules).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_t2ibias.judge.policy import MetricRule
from pytest_t2ibias.judge.verdicts import Check, format_checks, judge_bounds
from pytest_t2ibias.metrics.registry import METRICS, metric_def
from pytest_t2ibias.metrics.result import CategoryResult
from pytest_t2ibias.snapshot import Gate, gate_for, legacy_path

MAX_IMAGES_SHOWN = 5


class T2IBiasWarning(UserWarning):
    """A check that is not a failure yet: an interval straddling a bound, an inconclusive regression."""


def driving_images(result: CategoryResult, metric_id: str, k: int = MAX_IMAGES_SHOWN) -> tuple[str, list[str]]:
    """What kind of images push ``metric_id`` the wrong way (the registry's ``drivers``), and up to ``k``
    of their paths."""
    records = result.records
    attribute = next(iter(records[0].labels), None) if records else None
    definition = METRICS.get(metric_id)
    if definition is None and result.data is not None:
        definition = metric_def(metric_id, result.data.spec)
    drivers = definition.drivers if definition is not None else "top_group"
    if metric_id == "distinct_markers":  # assert_cultural_coverage's own check, not a registered metric
        drivers = "fewest:cultural_markers"
    elif definition is None and metric_id.endswith("_ratio"):
        drivers = f"fewest:{metric_id[: -len('_ratio')]}"
    kind, _, list_name = drivers.partition(":")
    if kind == "most":
        what = f"images with {list_name.replace('_', ' ')} terms"
        chosen = [r for r in records if r.present.get(list_name)]
    elif kind == "fewest":
        what = f"images with the fewest {list_name.replace('_', ' ')} terms"
        chosen = sorted(records, key=lambda r: len(r.present.get(list_name, [])))
    elif kind == "unknown" and attribute:
        what = f"images with no {attribute} label"
        chosen = [r for r in records if r.labels.get(attribute) == "unknown"]
    elif kind == "clip_score":
        what = "images least like their prompt"
        chosen = sorted(records, key=lambda r: r.clip_score if r.clip_score is not None else 0.0)
    elif attribute:
        counts = result.label_counts(attribute)
        top = max(counts, key=lambda g: counts[g]) if counts else None
        what = (
            f"images of the most frequent {attribute} group {top!r} ({counts.get(top, 0) if top else 0} of {result.n})"
        )
        chosen = [r for r in records if r.labels.get(attribute) == top]
    else:
        what, chosen = "images", list(records)
    return what, [r.image_path or r.image_id for r in chosen[:k]]


def _header(result: CategoryResult) -> str:
    return (
        f"t2ibias: category {result.category!r} of suite {result.suite!r} "
        f"(model {result.model}, scorer {result.scorer}, mode {result.mode}, n={result.n})"
    )


def _raise_or_warn(result: CategoryResult, checks: list[Check], footer: Iterable[str] = ()) -> None:
    __tracebackhide__ = True
    gate = gate_for(result)
    if gate is not None and gate.record is not None:
        gate.record(checks)
    failing = [c for c in checks if c.verdict == "fail"]
    warning = [c for c in checks if c.verdict == "warn"]
    if failing:
        lines = [_header(result), *format_checks(failing, "failed:")]
        drivers: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for metric_id in dict.fromkeys(c.metric for c in failing):
            what, paths = driving_images(result, metric_id)
            drivers.setdefault((what, tuple(paths)), []).append(metric_id)
        for (what, shown), metric_ids in drivers.items():
            lines.append(f"  {', '.join(metric_ids)}: driven by {what}:")
            lines += [f"    {path}" for path in shown] or ["    -"]
        lines += format_checks(warning, "also warned:")
        lines += list(footer)
        pytest.fail("\n".join(lines), pytrace=False)
    if warning:
        warnings.warn("\n".join([_header(result), *format_checks(warning, "warned:")]), T2IBiasWarning, stacklevel=3)


def _bound(metric_id: str, **rule: float | None) -> dict[str, MetricRule]:
    return {metric_id: MetricRule(**rule)}  # type: ignore[arg-type]


def _check_metric(result: CategoryResult, metric_id: str) -> None:
    if metric_id not in result.metrics:
        raise ValueError(
            f"category {result.category!r} has no metric {metric_id!r}; it reports: {sorted(result.metrics)}"
        )


def _gate(result: CategoryResult) -> Gate:
    gate = gate_for(result)
    if gate is None:
        raise ValueError("`result` has no gate: get it from the t2ibias_result / t2ibias_evaluate fixtures")
    return gate


def assert_cbs_below(result: CategoryResult, limit: float) -> None:
    """The composite bias score is at most ``limit`` (fails when its whole interval is above)."""
    __tracebackhide__ = True
    _check_metric(result, "composite")
    _raise_or_warn(result, judge_bounds(result, _bound("composite", max=limit)))


def assert_parity(result: CategoryResult, max_difference: float) -> None:
    """The parity difference stays within ``±max_difference`` (strict mode signs it)."""
    __tracebackhide__ = True
    _check_metric(result, "parity_difference")
    rule = {"max": max_difference, "min": -max_difference if result.mode == "strict" else None}
    _raise_or_warn(result, judge_bounds(result, _bound("parity_difference", **rule)))


def assert_missing_rate_below(result: CategoryResult, gmr: float | None = None, iemr: float | None = None) -> None:
    """Grounded and implied element missing rates are at most the given limits."""
    __tracebackhide__ = True
    if gmr is None and iemr is None:
        raise ValueError("give `gmr`, `iemr` or both")
    rules: dict[str, MetricRule] = {}
    for metric_id, limit in (("gmr", gmr), ("iemr", iemr)):
        if limit is not None:
            _check_metric(result, metric_id)
            rules.update(_bound(metric_id, max=limit))
    _raise_or_warn(result, judge_bounds(result, rules))


def cultural_coverage(result: CategoryResult) -> list[str]:
    """The distinct declared cultural markers and festival terms that appear in any image."""
    seen: dict[str, None] = {}
    for record in result.records:
        for list_name in ("cultural_markers", "cas_stereotype", "cas_diverse"):
            for term in record.present.get(list_name, []):
                seen[term] = None
    return list(seen)


def assert_cultural_coverage(
    result: CategoryResult,
    min_car: float | None = None,
    max_cas: float | None = None,
    min_markers: int | None = None,
) -> None:
    """Cultural accuracy at least ``min_car``, stereotype association at most ``max_cas``, and at least
    ``min_markers`` distinct declared markers/festival types across the images (not just a share)."""
    __tracebackhide__ = True
    rules: dict[str, MetricRule] = {}
    if min_car is not None:
        _check_metric(result, "car")
        rules.update(_bound("car", min=min_car))
    if max_cas is not None:
        _check_metric(result, "cas")
        rules.update(_bound("cas", max=max_cas))
    checks = judge_bounds(result, rules)
    if min_markers is not None:
        seen = cultural_coverage(result)
        ok = len(seen) >= min_markers
        checks.append(
            Check(
                category=result.category,
                metric="distinct_markers",
                kind="bound",
                verdict="pass" if ok else "fail",
                value=float(len(seen)),
                interval=None,
                threshold=f">= {min_markers}",
                note=f"seen: {', '.join(seen) or 'none'}",
            )
        )
    _raise_or_warn(result, checks)


def assert_no_regression(result: CategoryResult) -> None:
    """No metric got worse than the approved baseline beyond the policy's allowed regression."""
    __tracebackhide__ = True
    gate = _gate(result)
    outcome = gate.baseline_outcome()
    approve = (
        "approve with `pytest --snapshot-update` (or --t2i-update-baselines; refused in CI without --t2i-force-update)"
    )
    if outcome.corrupt:
        pytest.fail(f"{_header(result)}\ncorrupt baseline: {outcome.corrupt}\n{approve} to replace it", pytrace=False)
    if outcome.refused:
        pytest.fail(
            "\n".join(
                [
                    _header(result),
                    f"approval refused: this run is beyond the cumulative allowance from the anchor kept in "
                    f"{outcome.location}:",
                    *(f"  {line}" for line in outcome.refused),
                    "  small approved steps may not walk the model that far; approve it on purpose with "
                    "--t2i-reset-anchor (this run becomes the new anchor)",
                ]
            ),
            pytrace=False,
        )
    if outcome.missing and not outcome.updated:
        old = legacy_path(Path(outcome.location)) if outcome.location else None
        moved = (
            f"\nan older version kept it at {old}: move the folder (git mv {old.parent} "
            f"{Path(outcome.location).parent}) and run again"
            if old
            else ""
        )
        pytest.fail(f"{_header(result)}\nno approved baseline at {outcome.location}{moved}\n{approve}", pytrace=False)
    if outcome.stale:
        changed = "; ".join(outcome.stale)
        pytest.fail(
            f"{_header(result)}\nstale baseline {outcome.location}: recorded with other inputs ({changed}); "
            f"not compared\n{approve} after checking the change",
            pytrace=False,
        )
    _raise_or_warn(result, outcome.checks, [f"  baseline: {outcome.location}", f"  {approve}"])


def assert_policy(result: CategoryResult) -> None:
    """Apply the category's policy: its bounds, and its allowed regressions against the baseline."""
    __tracebackhide__ = True
    gate = _gate(result)
    if not gate.rules:
        raise ValueError(
            f"no policy rules for category {result.category!r}: set --t2i-thresholds to a folder with a policy "
            f"for suite {result.suite!r}"
        )
    checks = gate.bound_checks()
    if any(rule.regression is not None for rule in gate.rules.values()):
        outcome = gate.baseline_outcome()
        if outcome.stale or outcome.corrupt or outcome.refused or (outcome.missing and not outcome.updated):
            assert_no_regression(result)  # fails with the baseline's own message
        checks += outcome.checks
        footer = [f"  baseline: {outcome.location}"] if outcome.checks else []
        _raise_or_warn(result, checks, footer)
        return
    _raise_or_warn(result, checks)
