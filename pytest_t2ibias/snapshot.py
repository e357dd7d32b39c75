"""The syrupy glue: where baselines live, how they are written, and the per-test gate.

A baseline is one JSON file per test, ``__snapshots__/<test module>/<test name>.json``, stored and
updated through syrupy (``--snapshot-update``, or ``--t2i-update-baselines``) by :class:`BaselineExtension`.
What a baseline holds and when it is stale is the judge's business
(:mod:`pytest_t2ibias.judge.baseline`); this module only connects it to pytest.

A :class:`Gate` is one test's policy rules bound to its result and its approved baseline. The fixtures
make one per test and register it for the result they hand out, so a result stays plain data and the
assertion helpers find the machinery that judges it with :func:`gate_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from syrupy.extensions.json import JSONSnapshotExtension

from pytest_t2ibias.judge.baseline import BaselineRecord, staleness
from pytest_t2ibias.judge.family import RegressionFamily
from pytest_t2ibias.judge.verdicts import Check, judge_bounds, judge_regressions

if TYPE_CHECKING:
    from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.result import CategoryResult

#: A stored baseline as the session read it once: the parsed record, or the reason it is corrupt, or
#: None when there is no file.
StoredBaseline = BaselineRecord | str | None


class BaselineExtension(JSONSnapshotExtension):
    """A syrupy extension for :class:`BaselineRecord`: JSON out, and a comparison by policy, not by text.

    ``compare`` and ``reader`` are set per assertion (a subclass made by :func:`extension_for`):
    ``reader(path)`` gives the stored text the session already read, ``compare(stored)`` whether the test
    passes. The failure message is the assertion helper's, not syrupy's diff, so ``diff_lines`` gives
    nothing.
    """

    compare: ClassVar[Callable[[], bool]]
    reader: ClassVar[Callable[[str], str | None]]

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        if isinstance(data, BaselineRecord):
            return data.to_json()
        return super().serialize(data, exclude=exclude, include=include, matcher=matcher)

    def read_snapshot_data_from_location(
        self, *, snapshot_location: str, snapshot_name: str, session_id: str
    ) -> SerializableData | None:
        return type(self).reader(snapshot_location)

    def matches(self, *, serialized_data: SerializableData, snapshot_data: SerializableData) -> bool:
        return type(self).compare()

    def diff_lines(self, serialized_data: SerializedData, snapshot_data: SerializedData) -> Any:
        yield from ()


def extension_for(compare: Callable[[], bool], reader: Callable[[str], str | None]) -> type[BaselineExtension]:
    """A :class:`BaselineExtension` bound to one assertion's comparison and the session's reader."""
    return type(
        "T2IBiasBaseline", (BaselineExtension,), {"compare": staticmethod(compare), "reader": staticmethod(reader)}
    )


@dataclass
class BaselineOutcome:
    """What the baseline comparison found."""

    checks: list[Check] = field(default_factory=list)
    location: str = ""
    missing: bool = False
    stale: list[str] = field(default_factory=list)
    corrupt: str | None = None
    updated: bool = False
    baseline: BaselineRecord | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.corrupt) and not any(c.verdict == "fail" for c in self.checks)


@dataclass
class Gate:
    """One test's rules bound to its result and its approved baseline (compared once per test)."""

    result: CategoryResult
    rules: dict[str, MetricRule]
    snapshot: Any = None  # a syrupy SnapshotAssertion, or None outside pytest
    update: bool = False
    record: Callable[[list[Check]], None] | None = None
    #: the stored baseline at a path (read once per session): record, corruption message, or None
    stored: Callable[[str], StoredBaseline] = lambda path: None
    #: the text the session read at a path (what syrupy is told is stored)
    stored_text: Callable[[str], str | None] = lambda path: None
    #: stored baseline -> this test's comparisons and adjusted p-values (the run's correction)
    family: Callable[[BaselineRecord], RegressionFamily] | None = None
    _baseline: BaselineOutcome | None = None

    def bound_checks(self) -> list[Check]:
        return judge_bounds(self.result, self.rules)

    def baseline_outcome(self) -> BaselineOutcome:
        """Compare with (or, when updating, write) the approved baseline, once per test."""
        if self._baseline is not None:
            return self._baseline
        outcome = BaselineOutcome()
        self._baseline = outcome
        if self.snapshot is None:
            outcome.missing = True
            return outcome
        result = self.result
        current = BaselineRecord.from_result(result)
        regression_rules = {m: r for m, r in self.rules.items() if r.regression is not None}

        def compare() -> bool:
            outcome.missing = False
            if self.update:
                return False  # approving: syrupy rewrites every baseline with this run's numbers
            stored = self.stored(outcome.location)
            if isinstance(stored, str):
                outcome.corrupt = stored
                return False
            assert stored is not None  # syrupy calls compare only when a file is there
            outcome.baseline = stored
            outcome.stale = staleness(stored, current)
            if outcome.stale:
                return False
            family = self.family(stored) if self.family else RegressionFamily()
            outcome.checks = judge_regressions(
                result, stored, regression_rules, family.comparisons, family.adjusted, family.alpha
            )
            return not any(c.verdict == "fail" for c in outcome.checks)

        snapshot = self.snapshot.use_extension(extension_for(compare, self.stored_text))
        outcome.location = str(
            snapshot.extension.get_location(test_location=snapshot.test_location, index=snapshot.index)
        )
        outcome.missing = True  # stays so when syrupy finds no stored file and never calls `compare`
        passed = snapshot == current
        if self.update and passed and (outcome.missing or not outcome.ok):
            outcome.updated = True
            outcome.missing, outcome.stale, outcome.corrupt, outcome.checks = False, [], None, []
        return outcome


_GATES: dict[int, tuple[CategoryResult, Gate]] = {}


def register_gate(gate: Gate) -> None:
    """Make ``gate`` the one that judges ``gate.result`` (until :func:`release_gate`)."""
    _GATES[id(gate.result)] = (gate.result, gate)


def release_gate(gate: Gate) -> None:
    _GATES.pop(id(gate.result), None)


def gate_for(result: CategoryResult) -> Gate | None:
    """The gate of a result handed out by the ``t2ibias_result`` / ``t2ibias_evaluate`` fixtures."""
    found = _GATES.get(id(result))
    return found[1] if found is not None and found[0] is result else None
