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

from pytest_t2ibias.errors import T2IBiasWarning as T2IBiasWarning
from pytest_t2ibias.judge.policy import MetricRule
from pytest_t2ibias.judge.verdicts import Check, format_checks, inconclusive_for_scorer, judge_bounds, judge_estimates
from pytest_t2ibias.metrics.aggregate import Aggregates
from pytest_t2ibias.metrics.result import CategoryResult
from pytest_t2ibias.snapshot import Gate, aggregate_gate_for, gate_for, legacy_path

MAX_IMAGES_SHOWN = 5


def driving_images(result: CategoryResult, metric_id: str, k: int = MAX_IMAGES_SHOWN) -> tuple[str, list[str]]:
    """What kind of images push ``metric_id`` the wrong way (the registry's ``drivers``), and up to ``k``
    of their paths: the images the HTML report links a failed check to
    (:func:`~pytest_t2ibias.report.drivers.driving_image_ids`)."""
    from pytest_t2ibias.report.drivers import driving_image_ids
    from pytest_t2ibias.results import ImageResult

    images = [ImageResult(id=r.image_id, labels=dict(r.labels), present=dict(r.present)) for r in result.records]
    scores = {r.image_id: r.clip_score for r in result.records if r.clip_score is not None}
    spec = result.data.spec if result.data is not None else None
    what, ids = driving_image_ids(images, metric_id, spec, k, clip_scores=scores)
    paths = {r.image_id: r.image_path or r.image_id for r in result.records}
    return what, [paths[i] for i in ids]


def _header(result: CategoryResult) -> str:
    from pytest_t2ibias.masking import mask_credentials
    from pytest_t2ibias.report.summary import short_scorer

    # the model and scorer are the user's locations: a URL among them keeps its password out of the failure
    return mask_credentials(
        f"t2ibias: category {result.category!r} of suite {result.suite!r} "
        f"(model {result.model}, scorer {short_scorer(result.scorer)}, mode {result.mode}, n={result.n})"
    )


def _verdict_line(result: CategoryResult, failing: list[Check]) -> str:
    """The failure's first line (what pytest's short summary shows): what failed, by how much."""
    parts = []
    for c in failing:
        if c.delta is not None and c.allowed is not None:
            parts.append(f"{c.metric} worse by {c.delta:+.4f} (allowed {c.allowed:.4f})")
        elif c.value is not None:
            parts.append(f"{c.metric} = {c.value:.4f} (rule {c.threshold})")
        else:
            parts.append(f"{c.metric}: {c.note}")
    return f"t2ibias: {result.category} FAILED: " + "; ".join(parts)


def _failure(result: CategoryResult, checks: list[Check], footer: Iterable[str] = ()) -> str | None:
    """The failure message of ``checks`` (None when none failed), after recording them for the run's
    summary; warnings are recorded there (the ``t2ibias`` section lists each once), not issued as Python
    warnings as well."""
    gate = gate_for(result)
    if gate is not None:
        checks = inconclusive_for_scorer(checks, result, gate.scorer_problem)
    if gate is not None and gate.record is not None:
        gate.record(checks)
    failing = [c for c in checks if c.verdict == "fail"]
    warning = [c for c in checks if c.verdict == "warn"]
    if failing:
        lines = [_verdict_line(result, failing), _header(result), *format_checks(failing, "failed:")]
        drivers: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for metric_id in dict.fromkeys(c.metric for c in failing):
            what, paths = driving_images(result, metric_id)
            drivers.setdefault((what, tuple(paths)), []).append(metric_id)
        for (what, shown), metric_ids in drivers.items():
            lines.append(f"  {', '.join(metric_ids)}: driven by {what}:")
            lines += [f"    {path}" for path in shown] or ["    -"]
        lines += format_checks(warning, "also warned:")
        lines += list(footer)
        return "\n".join(lines)
    if warning and gate is None:  # no run summary to show them: a result built by hand
        warnings.warn("\n".join([_header(result), *format_checks(warning, "warned:")]), T2IBiasWarning, stacklevel=4)
    return None


def _raise_or_warn(result: CategoryResult, checks: list[Check], footer: Iterable[str] = ()) -> None:
    """Fail on a failed check (see :func:`_failure`)."""
    __tracebackhide__ = True
    failure = _failure(result, checks, footer)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


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
    """No metric got worse than the approved baseline beyond the policy's allowed regression.

    ``assert result == snapshot`` (syrupy's fixture) is the same check with the same message.
    """
    __tracebackhide__ = True
    failure = regression_failure(result)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


def regression_failure(result: CategoryResult) -> str | None:
    """What :func:`assert_no_regression` fails with (None: it passes), its checks recorded for the run."""
    gate = _gate(result)
    outcome = gate.baseline_outcome()
    approve = (
        "approve with `pytest --snapshot-update` (or --t2i-update-baselines; refused in CI without --t2i-force-update)"
    )
    if outcome.unwritten:
        return f"t2ibias: {result.category}: {outcome.unwritten}"
    if outcome.corrupt:
        return (
            f"t2ibias: {result.category}: corrupt baseline\n{_header(result)}\ncorrupt baseline: {outcome.corrupt}\n"
            f"{approve} to replace it"
        )
    if outcome.refused:
        return "\n".join(
            [
                f"t2ibias: {result.category}: approval refused (significantly beyond the cumulative allowance "
                "from the anchor)",
                _header(result),
                "approval refused: this run is significantly beyond the cumulative allowance from the anchor "
                f"kept in {outcome.location}:",
                *(f"  {line}" for line in outcome.refused),
                "  small approved steps may not walk the model that far; approve it on purpose with "
                "--t2i-reset-anchor (this run becomes the new anchor)",
            ]
        )
    if outcome.missing and not outcome.updated:
        old = legacy_path(Path(outcome.location)) if outcome.location else None
        moved = (
            f"\nan older version kept it at {old}: move the folder (git mv {old.parent} "
            f"{Path(outcome.location).parent}) and run again"
            if old
            else ""
        )
        return (
            f"t2ibias: {result.category}: no approved baseline\n{_header(result)}\nno approved baseline at "
            f"{outcome.location}{moved}\n{approve}"
        )
    if outcome.stale:
        changed = "; ".join(outcome.stale)
        return (
            f"t2ibias: {result.category}: stale baseline ({changed})\n{_header(result)}\n"
            f"stale baseline {outcome.location}: recorded with other inputs ({changed}); "
            f"not compared\n{approve} after checking the change"
        )
    return _failure(result, outcome.checks, [f"  baseline: {outcome.location}", f"  {approve}"])


def assert_aggregates(aggregates: Aggregates) -> None:
    """Apply the policy's ``aggregate`` rules to a suite's aggregates (from the ``t2ibias_aggregate``
    fixture): a hard bound fails when the value is beyond it and its test is significant after the run's
    correction; beyond it but not significant, or an interval that straddles it, warns."""
    __tracebackhide__ = True
    gate = aggregate_gate_for(aggregates)
    if gate is None:
        raise ValueError("`aggregates` has no gate: get them from the t2ibias_aggregate fixture")
    if not gate.rules:
        raise ValueError(
            f"no aggregate rules for suite {gate.suite!r}: add an `aggregate:` section to its policy "
            "(docs/policies.md, groups, globs and aggregates)"
        )
    checks = judge_estimates("aggregate", aggregates.metrics, gate.rules, gate.adjusted, gate.alpha)
    if gate.record is not None:
        gate.record(checks)
    failing = [c for c in checks if c.verdict == "fail"]
    if not failing:
        return
    parts = [f"{c.metric} = {c.value:.4f} (rule {c.threshold})" for c in failing if c.value is not None]
    worst = aggregates.worst
    lines = [
        "t2ibias: aggregate FAILED: " + "; ".join(parts),
        f"t2ibias: aggregates of suite {gate.suite!r} over {len(aggregates.categories)} categories",
        *format_checks(failing, "failed:"),
        "  the categories that amplify their reference most:",
        *(f"    {w.category}: amplification {w.amplification:+.4f}, gap {w.gap:+.4f}, n={w.n}" for w in worst),
        *format_checks([c for c in checks if c.verdict == "warn"], "also warned:"),
    ]
    pytest.fail("\n".join(lines), pytrace=False)


def assert_policy(result: CategoryResult | Aggregates) -> None:
    """Apply the policy: to a category, its bounds and its allowed regressions against the baseline; to
    a suite's aggregates, the policy's ``aggregate`` rules (:func:`assert_aggregates`)."""
    __tracebackhide__ = True
    if isinstance(result, Aggregates):
        assert_aggregates(result)
        return
    gate = _gate(result)
    if not gate.rules:
        raise ValueError(
            f"no policy rules for category {result.category!r}: set --t2i-thresholds to a folder with a policy "
            f"for suite {result.suite!r}"
        )
    checks = gate.bound_checks()
    if any(rule.regression is not None for rule in gate.rules.values()):
        outcome = gate.baseline_outcome()
        if (
            outcome.unwritten
            or outcome.stale
            or outcome.corrupt
            or outcome.refused
            or (outcome.missing and not outcome.updated)
        ):
            assert_no_regression(result)  # fails with the baseline's own message
        checks += outcome.checks
        footer = [f"  baseline: {outcome.location}"] if outcome.checks else []
        _raise_or_warn(result, checks, footer)
        return
    _raise_or_warn(result, checks)
