"""Where baselines live, how they are written, and the per-test gate.

A baseline is one JSON file per test, ``__baselines__/<test module>/<test name>.json`` beside the test
file (``test_x[doctor].json`` for a parametrized test). What a baseline holds and when it is stale is the
judge's business (:mod:`pytest_t2ibias.judge.baseline`); this module connects it to pytest.

The store never loses a baseline:

* a baseline is written only by a test that ran to the point of comparing (its gate), and only when
  approving (``--t2i-update-baselines``, or syrupy's ``--snapshot-update``); the write is atomic (a temp
  file, fsync, rename), so a crash leaves the old file or the new one;
* nothing is deleted, except by ``--t2i-prune-baselines`` at the end of a full, passing run: then the
  files of tests that no longer exist (in the modules that were collected) are removed, and named.

Baselines used to live in syrupy's ``__snapshots__/`` folder. Syrupy deletes every file there it does not
know whenever ``--snapshot-update`` runs and our tests did not get to assert (and fails a run that leaves
one unused), so the store moved to its own folder. A baseline still at the old place is not read (syrupy
would still act on it): the test says it is missing and how to move it (``git mv``).

A :class:`Gate` is one test's policy rules bound to its result and its approved baseline. The fixtures
make one per test and register it for the result they hand out, so a result stays plain data and the
assertion helpers find the machinery that judges it with :func:`gate_for`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pytest_t2ibias._files import read_regular_bytes
from pytest_t2ibias._io import write_text_atomic
from pytest_t2ibias.judge.baseline import (
    BaselineRecord,
    CorruptBaselineError,
    anchor_staleness,
    check_gated,
    parse_baseline,
    staleness,
)
from pytest_t2ibias.judge.family import RegressionFamily
from pytest_t2ibias.judge.verdicts import Check, judge_bounds, judge_regressions, worsening

if TYPE_CHECKING:
    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.aggregate import Aggregates
    from pytest_t2ibias.metrics.result import CategoryResult

BASELINE_DIR = "__baselines__"
#: Where syrupy kept them (read as a fallback, never written or deleted).
LEGACY_DIR = "__snapshots__"

#: A stored baseline as the store read it: the parsed record, the reason it is corrupt, or None.
StoredBaseline = BaselineRecord | str | None
WriteEvent = Literal["created", "updated", "unchanged"]


def baseline_path(test_file: Path, test_name: str, folder: str = BASELINE_DIR) -> Path:
    """The baseline file of a test: ``<test dir>/__baselines__/<module>/<test name>.json``."""
    safe = re.sub(r"[/\\\x00]", "_", test_name)  # a parametrized id must not become a path
    return test_file.parent / folder / test_file.stem / f"{safe}.json"


def legacy_path(path: Path) -> Path | None:
    """Where an older version (through syrupy) kept the baseline at ``path``, when a file is there."""
    old = path.parent.parent.parent / LEGACY_DIR / path.parent.name / path.name
    return old if old.is_file() else None


@dataclass
class BaselineStore:
    """The baselines of a run: read once each, written atomically, events kept for the summary."""

    _read: dict[Path, tuple[StoredBaseline, Path]] = field(default_factory=dict)
    events: dict[Path, str] = field(default_factory=dict)

    def read(self, path: Path) -> tuple[StoredBaseline, Path]:
        """The baseline at ``path`` (read once), and where it was read."""
        if path not in self._read:
            source = path
            try:
                raw = read_regular_bytes(source)  # a FIFO or folder there is corrupt, not a hang
            except FileNotFoundError:
                self._read[path] = (None, path)
                return self._read[path]
            except OSError as err:
                self._read[path] = (f"{source}: cannot read baseline: {err.strerror}", source)
                return self._read[path]
            try:
                # an undecodable file must read as corrupt, not as missing
                stored: StoredBaseline = parse_baseline(raw.decode("utf-8", errors="replace"), str(source))
            except CorruptBaselineError as err:
                stored = str(err)
            self._read[path] = (stored, source)
        return self._read[path]

    def write(self, path: Path, record: BaselineRecord) -> WriteEvent:
        """Approve ``record`` as the baseline at ``path`` (atomic, durable)."""
        text = record.to_json()
        previous = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        event: WriteEvent = "created" if previous is None else "unchanged" if previous == text else "updated"
        if event != "unchanged":
            write_text_atomic(path, text)
        self._read[path] = (record, path)
        self.events[path] = event
        return event

    def note(self, path: Path, event: str) -> None:
        self.events.setdefault(path, event)

    def unused(self, test_files: Iterable[Path], used: Iterable[Path]) -> list[Path]:
        """Baseline files of the given test modules that no collected test owns."""
        owned = {p.resolve() for p in used}
        out = []
        for test_file in sorted(set(test_files)):
            folder = test_file.parent / BASELINE_DIR / test_file.stem
            if folder.is_dir():
                out += [p for p in sorted(folder.glob("*.json")) if p.resolve() not in owned]
        return out


@dataclass
class BaselineOutcome:
    """What the baseline comparison found."""

    checks: list[Check] = field(default_factory=list)
    location: str = ""
    missing: bool = False
    stale: list[str] = field(default_factory=list)
    corrupt: str | None = None
    updated: bool = False
    event: str | None = None  # created / updated / unchanged, when approving
    baseline: BaselineRecord | None = None
    #: approving was refused: the run is beyond the cumulative allowance from the anchor (one line each)
    refused: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        """Why the baseline could not be compared, in a few words (None when it was, or when approving)."""
        if self.corrupt:
            return "corrupt baseline"
        if self.refused:
            return "approval refused"
        if self.missing and not self.updated:
            return "no baseline"
        if self.stale:
            return "stale baseline"
        return None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.corrupt or self.refused) and not any(
            c.verdict == "fail" for c in self.checks
        )


@dataclass
class Gate:
    """One test's rules bound to its result and its approved baseline (compared once per test)."""

    result: CategoryResult
    rules: dict[str, MetricRule]
    path: Path | None = None  # the test's baseline file; None outside pytest
    store: BaselineStore | None = None
    update: bool = False
    #: approving makes this run the new anchor (instead of keeping the first approved baseline's)
    reset_anchor: bool = False
    record: Callable[[list[Check]], None] | None = None
    #: a comparable stored baseline (or None) -> this test's comparisons and adjusted p-values (the run's
    #: correction), its anchor's, and its bounds'
    family: Callable[[BaselineRecord | None], RegressionFamily] | None = None
    #: why the policy does not trust the scorer for the attribute (its checks are then inconclusive)
    scorer_problem: str | None = None
    _baseline: BaselineOutcome | None = None
    _comparable: tuple[BaselineRecord | None] | None = None

    @property
    def compared_with(self) -> BaselineRecord | None:
        """The approved baseline this test was compared with (None before comparing, or when it was not)."""
        return self._baseline.baseline if self._baseline is not None and not self.update else None

    @property
    def problem(self) -> str | None:
        """Why this test's baseline could not be compared (see :attr:`BaselineOutcome.problem`)."""
        return self._baseline.problem if self._baseline is not None else None

    def _family(self) -> RegressionFamily:
        return self.family(self.comparable()) if self.family else RegressionFamily()

    def bound_checks(self) -> list[Check]:
        """The rules' bounds, judged with the run's correction."""
        family = self._family()
        return judge_bounds(self.result, self.rules, family.adjusted, family.alpha)

    def comparable(self) -> BaselineRecord | None:
        """The stored baseline when it can be compared (present, sound, not stale), else None."""
        if self._comparable is None:
            self._comparable = (self._read_comparable(),)
        return self._comparable[0]

    def _read_comparable(self) -> BaselineRecord | None:
        if self.path is None or self.store is None or self.update:
            return None
        return comparable_baseline(self.store, self.path, self.result, self.rules)

    def baseline_outcome(self) -> BaselineOutcome:
        """Compare with (or, when approving, write) the approved baseline, once per test."""
        if self._baseline is not None:
            return self._baseline
        outcome = BaselineOutcome()
        self._baseline = outcome
        if self.path is None or self.store is None:
            outcome.missing = True
            return outcome
        outcome.location = str(self.path)
        stored, source = self.store.read(self.path)
        if self.update:
            return self._approve(outcome, stored if isinstance(stored, BaselineRecord) else None)
        outcome.location = str(source)
        current = BaselineRecord.from_result(self.result)
        if stored is None:
            outcome.missing = True
            self.store.note(self.path, "missing")
            return outcome
        if isinstance(stored, str):
            outcome.corrupt = stored
            self.store.note(self.path, "corrupt")
            return outcome
        outcome.baseline = stored
        outcome.stale = staleness(stored, current)
        if outcome.stale:
            self.store.note(self.path, "stale")
            return outcome
        regression_rules = {m: r for m, r in self.rules.items() if r.regression is not None}
        try:
            check_gated(stored, [m for m in regression_rules if m in self.result.metrics], str(source))
        except CorruptBaselineError as err:
            outcome.corrupt = str(err)
            self.store.note(self.path, "corrupt")
            return outcome
        family = self._family()
        outcome.checks = judge_regressions(
            self.result,
            stored,
            regression_rules,
            family.comparisons,
            family.adjusted,
            family.alpha,
            evidence=family.evidence,
            family_size=family.size,
        )
        if stored.anchor is not None and family.anchor_stale:
            outcome.checks.append(_anchor_stale_check(self.result, family.anchor_stale))
        elif stored.anchor is not None:
            outcome.checks += judge_regressions(
                self.result,
                stored.anchor,
                regression_rules,
                family.anchor,
                family.anchor_adjusted(),
                family.alpha,
                evidence=family.evidence,
                family_size=family.size,
                against="anchor",
            )
        self.store.note(self.path, "compared")
        return outcome

    def _approve(self, outcome: BaselineOutcome, stored: BaselineRecord | None) -> BaselineOutcome:
        """Approve this run: it keeps the anchor of the baseline it replaces (or that baseline, as the
        anchor), unless resetting; a run beyond the cumulative allowance from the anchor is refused."""
        assert self.path is not None and self.store is not None
        anchor = None if self.reset_anchor or stored is None else stored.as_anchor()
        if anchor is not None and not anchor_staleness(anchor, BaselineRecord.from_result(self.result)):
            outcome.refused = beyond_cumulative(self.result, anchor, self.rules)
            if outcome.refused:
                return outcome
        outcome.event = self.store.write(self.path, BaselineRecord.from_result(self.result, anchor=anchor))
        outcome.updated = True
        return outcome


def comparable_baseline(
    store: BaselineStore, path: Path, result: CategoryResult, rules: dict[str, MetricRule]
) -> BaselineRecord | None:
    """The baseline at ``path`` when it can be compared with ``result``: present, sound, not stale, and
    holding every metric the rules gate (otherwise the test reports why, and nothing is compared)."""
    stored, _ = store.read(path)
    if not isinstance(stored, BaselineRecord) or staleness(stored, BaselineRecord.from_result(result)):
        return None
    try:
        check_gated(stored, [m for m, r in rules.items() if r.regression and m in result.metrics], str(path))
    except CorruptBaselineError:
        return None
    return stored


def beyond_cumulative(result: CategoryResult, anchor: BaselineRecord, rules: dict[str, MetricRule]) -> list[str]:
    """The metrics this run moves past their cumulative allowance from the anchor (one line each)."""
    out = []
    for metric_id, rule in rules.items():
        value = result.metrics[metric_id].value if metric_id in result.metrics else None
        old = anchor.metrics[metric_id].value if metric_id in anchor.metrics else None
        if rule.regression is None or not isinstance(value, float | int) or not isinstance(old, float | int):
            continue
        worse = worsening(metric_id, result.mode, float(value), float(old))
        allowed = rule.regression.cumulative_allowed(float(old))
        if worse > allowed:
            out.append(
                f"{result.category}.{metric_id} = {value:.4f} is worse than the anchor's {old:.4f} by {worse:+.4f} "
                f"(cumulative allowance {allowed:.4f})"
            )
    return out


def _anchor_stale_check(result: CategoryResult, changes: list[str]) -> Check:
    return Check(
        category=result.category,
        metric="*",
        kind="anchor",
        verdict="warn",
        value=None,
        interval=None,
        threshold="-",
        note=f"anchor not compared: recorded with other inputs ({'; '.join(changes)}); reset it with "
        "--t2i-reset-anchor when approving",
    )


@dataclass
class AggregateGate:
    """The policy's ``aggregate`` rules bound to a suite's aggregates, with the run's adjusted p-values of
    their hard bounds (aggregates have no baseline: they are judged against their bounds only)."""

    aggregates: Aggregates
    suite: str
    rules: dict[str, MetricRule]
    adjusted: dict[str, float]
    alpha: float
    record: Callable[[list[Check]], None] | None = None


#: id of the judged object (a result, or aggregates) -> (that object, its gate), while its test runs
_GATES: dict[int, tuple[object, Gate | AggregateGate]] = {}


def _judged(gate: Gate | AggregateGate) -> object:
    return gate.result if isinstance(gate, Gate) else gate.aggregates


def register_gate(gate: Gate | AggregateGate) -> None:
    """Make ``gate`` the one that judges its result or aggregates (until :func:`release_gate`)."""
    judged = _judged(gate)
    _GATES[id(judged)] = (judged, gate)


def release_gate(gate: Gate | AggregateGate) -> None:
    _GATES.pop(id(_judged(gate)), None)


def _gate_of(judged: object) -> Gate | AggregateGate | None:
    found = _GATES.get(id(judged))
    return found[1] if found is not None and found[0] is judged else None


def gate_for(result: CategoryResult) -> Gate | None:
    """The gate of a result handed out by the ``t2ibias_result`` / ``t2ibias_evaluate`` fixtures."""
    gate = _gate_of(result)
    return gate if isinstance(gate, Gate) else None


def aggregate_gate_for(aggregates: Aggregates) -> AggregateGate | None:
    """The gate of aggregates handed out by the ``t2ibias_aggregate`` fixture."""
    gate = _gate_of(aggregates)
    return gate if isinstance(gate, AggregateGate) else None
