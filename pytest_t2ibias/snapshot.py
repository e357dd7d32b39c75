"""Where baselines live, how they are written, and the per-test gate.

A baseline is one JSON file per test, ``__baselines__/<test module>/<test key>.json`` beside the test
file: the key is the test's node id inside its module (``test_x[doctor]``, ``TestA.test_cat``), made a
safe, bounded file name by :func:`baseline_stem`. Files of the older naming (the test's name alone) are
read until the test's approval moves them. What a baseline holds and when it is stale is the
judge's business (:mod:`pytest_t2ibias.judge.baseline`); this module connects it to pytest.

The store never loses a baseline:

* a baseline is written only by a test that ran to the point of comparing (its gate), and only when
  approving (``--t2i-update-baselines``, or syrupy's ``--snapshot-update``); the write is atomic (a temp
  file, fsync, rename), so a crash leaves the old file or the new one;
* nothing is deleted, except by ``--t2i-prune-baselines`` at the end of a full, passing run: then the
  files of tests that no longer exist (in the modules that were collected in full) are removed, and
  named: only files that parse as baselines, inside the rootdir once links resolve; and an older-named
  file once its test's approval wrote the new one.

Baselines used to live in syrupy's ``__snapshots__/`` folder. Syrupy deletes every file there it does not
know whenever ``--snapshot-update`` runs and our tests did not get to assert (and fails a run that leaves
one unused), so the store moved to its own folder. A baseline still at the old place is not read (syrupy
would still act on it): the test says it is missing and how to move it (``git mv``).

A :class:`Gate` is one test's policy rules bound to its result and its approved baseline. The fixtures
make one per test and hand out a copy of the result that carries it (:func:`with_gate`), so the result's
fields stay plain data and the assertion helpers find the machinery that judges it with :func:`gate_for`.

syrupy is the snapshot layer: a gate compares through a syrupy assertion of its test
(:class:`~pytest_t2ibias.syrupy_extension.BaselineExtension`), so syrupy reads the baseline, counts it in
its end-of-session report, approves it under ``--snapshot-update``, and ``assert t2ibias_result ==
snapshot`` is judged by the gate. What syrupy would decide alone (byte equality, writing, deleting unused
files) is overridden there: the gate judges, this store writes, and only ``--t2i-prune-baselines`` deletes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from pytest_t2ibias._files import read_regular_bytes
from pytest_t2ibias._io import write_text_atomic
from pytest_t2ibias.errors import BaselineWriteError as BaselineWriteError
from pytest_t2ibias.judge.approval import drifts, judge_approval, refusals
from pytest_t2ibias.judge.baseline import (
    AnchorRef,
    BaselineRecord,
    CorruptBaselineError,
    anchor_staleness,
    check_gated,
    metric_changes,
    parse_baseline,
    staleness,
)
from pytest_t2ibias.judge.family import RegressionFamily
from pytest_t2ibias.judge.verdicts import Check, inconclusive_for_scorer, judge_bounds, judge_regressions
from pytest_t2ibias.metrics.result import CategoryResult

if TYPE_CHECKING:
    from syrupy.assertion import SnapshotAssertion

    from pytest_t2ibias.judge.policy import MetricRule
    from pytest_t2ibias.metrics.aggregate import Aggregates

BASELINE_DIR = "__baselines__"
#: Where syrupy kept them (read as a fallback, never written or deleted).
LEGACY_DIR = "__snapshots__"

#: A stored baseline as the store read it: the parsed record, the reason it is corrupt, or None.
StoredBaseline = BaselineRecord | str | None
WriteEvent = Literal["created", "updated", "unchanged"]


#: The longest readable part of a baseline's file name, in UTF-8 bytes (a file name stops at 255 bytes).
MAX_STEM_BYTES = 100
#: Characters a file name cannot hold on some system (a parametrize id may hold any of them).
_UNSAFE = re.compile(r'[/\\<>:"|?*\x00-\x1f\x7f]')


def baseline_key(names: Sequence[str]) -> str:
    """A test's name inside its module: its classes and its name joined with dots (``TestA.test_cat[x]``).

    A module-level ``test_x`` keeps its name, so its file is the one older versions wrote.
    """
    return ".".join(names)


def baseline_stem(key: str) -> str:
    """The file name (without ``.json``) of a test's baseline, one per key and at most ~115 bytes.

    A key that is a safe, short file name is used as it is. Any other gets its safe part, cut to
    :data:`MAX_STEM_BYTES`, and ``-`` plus 12 hex digits of the key's hash: ``x/y`` and ``x_y`` then get
    two files. A plain key never ends in ``-<hex>`` (a name is dotted identifiers, a parametrized one ends
    in ``]``), so the two kinds cannot meet.

    >>> baseline_stem("test_x[doctor]"), baseline_stem("test_x[x/y]")
    ('test_x[doctor]', 'test_x[x_y]-7f504ebb34b5')
    """
    safe = _UNSAFE.sub("_", key)
    if safe == key and len(key.encode("utf-8", "surrogatepass")) <= MAX_STEM_BYTES:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    readable = safe.encode("utf-8", "surrogatepass")[:MAX_STEM_BYTES].decode("utf-8", "ignore")
    return f"{readable}-{digest}"


def baseline_path(test_file: Path, key: str, folder: str = BASELINE_DIR) -> Path:
    """The baseline file of a test: ``<test dir>/__baselines__/<module>/<stem of its key>.json``."""
    return test_file.parent / folder / test_file.stem / f"{baseline_stem(key)}.json"


def old_baseline_path(test_file: Path, test_name: str) -> Path:
    """Where versions up to 0.x kept it: keyed by the test's name alone (classes ignored, ``/`` -> ``_``)."""
    safe = re.sub(r"[/\\\x00]", "_", test_name)
    return test_file.parent / BASELINE_DIR / test_file.stem / f"{safe}.json"


def legacy_path(path: Path) -> Path | None:
    """Where an older version (through syrupy) kept the baseline at ``path``, when a file is there."""
    old = path.parent.parent.parent / LEGACY_DIR / path.parent.name / path.name
    return old if old.is_file() else None


@dataclass
class BaselineStore:
    """The baselines of a run: read once each, written atomically, events kept for the summary."""

    _read: dict[Path, tuple[StoredBaseline, Path]] = field(default_factory=dict)
    events: dict[Path, str] = field(default_factory=dict)
    #: a test's baseline path -> the file an older version wrote for it (only where no other test could
    #: claim that file): read while the new file does not exist, moved to the new one on approval
    legacy: dict[Path, Path] = field(default_factory=dict)
    #: approving a test whose baseline was read from its older file removes that file (off while only some
    #: tests of a module were collected: the file may be another test's)
    retire_legacy: bool = True
    #: an updated baseline -> what moved, one line each (``male_share 0.5200 -> 0.5400``), for the summary
    changes: dict[Path, list[str]] = field(default_factory=dict)

    def source(self, path: Path) -> Path:
        """Where the baseline of ``path`` is read: ``path``, or its older file while ``path`` is absent."""
        old = self.legacy.get(path)
        return old if old is not None and not os.path.lexists(path) and old.is_file() else path

    def read(self, path: Path) -> tuple[StoredBaseline, Path]:
        """The baseline at ``path`` (read once), and where it was read."""
        if path not in self._read:
            source = self.source(path)
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
                stored: StoredBaseline = parse_baseline(
                    raw.decode("utf-8", errors="replace"), str(source), source.parent
                )
            except CorruptBaselineError as err:
                stored = str(err)
            self._read[path] = (stored, source)
        return self._read[path]

    def write(self, path: Path, record: BaselineRecord) -> WriteEvent:
        """Approve ``record`` as the baseline at ``path`` (atomic, durable), moving an older file's to it; its
        anchor goes to its own content-addressed file first (written once, never rewritten).

        Raises:
            BaselineWriteError: the file cannot be written (the old one is kept).
        """
        old = self.source(path)
        try:
            text = record.to_json(self._write_anchor(path, record) if record.anchor is not None else None)
            previous = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
            event: WriteEvent = "created" if previous is None else "unchanged" if previous == text else "updated"
            if event != "unchanged":
                write_text_atomic(path, text)
        except OSError as err:
            raise BaselineWriteError(f"cannot write baseline {path}: {_reason(err)}") from None
        stored = self._read.get(path, (None, path))[0]
        if event == "updated" and isinstance(stored, BaselineRecord):
            self.changes[path] = metric_changes(stored, record)
        self._read[path] = (record, path)
        self.events[path] = event
        if old != path and self.retire_legacy:
            self._retire(old)
        return event

    def _write_anchor(self, path: Path, record: BaselineRecord) -> AnchorRef:
        """Write the anchor's file beside ``path`` unless it is there already (same name, same bytes)."""
        text, ref = record.anchor_file(path.stem)
        anchor = path.parent / ref.file
        if os.path.lexists(anchor):
            if anchor.is_symlink() or not anchor.is_file() or anchor.read_bytes() != text.encode("utf-8"):
                raise BaselineWriteError(f"cannot write anchor {anchor}: another file is there (not overwritten)")
            return ref
        write_text_atomic(anchor, text)
        return ref

    def _retire(self, old: Path) -> None:
        """Remove the older file a test's new one replaces (kept, and listed as unused, if that fails)."""
        try:
            old.unlink()
        except OSError:
            return
        self.events[old] = "migrated"

    def note(self, path: Path, event: str) -> None:
        self.events.setdefault(path, event)

    def unused(self, test_files: Iterable[Path], used: Iterable[Path], root: Path | None = None) -> list[Path]:
        """Baseline files of the given test modules that no collected test owns: only files this store
        writes (a ``.json`` that parses as a baseline) and, given ``root``, inside it once links resolve."""
        owned = {p.resolve() for p in used}
        owned |= {old.resolve() for new, old in self.legacy.items() if not os.path.lexists(new)}
        out = []
        for test_file in sorted(set(test_files)):
            folder = test_file.parent / BASELINE_DIR / test_file.stem
            if folder.is_dir():
                found = [p for p in sorted(folder.glob("*.json")) if p.resolve() not in owned]
                out += [p for p in found if _is_own_baseline(p, root)]
        return out


def _reason(err: OSError) -> str:
    if err.errno == errno.EFBIG:
        return "file too large (a file-size limit, ulimit -f?)"
    return err.strerror or str(err)


def _is_own_baseline(path: Path, root: Path | None) -> bool:
    """A file the store wrote and may delete: a baseline file (not a link), inside ``root`` once resolved."""
    if path.name.startswith(".") or path.is_symlink() or not path.is_file():
        return False
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        return False
    try:
        parse_baseline(path.read_text(encoding="utf-8"), str(path), path.parent)
    except (OSError, UnicodeDecodeError, CorruptBaselineError):
        return False
    return True


@dataclass
class StoreIndex:
    """Which baseline files the collected tests own: built from every test pytest collected, before
    ``-k``, ``-m`` or a conftest drop any (a test that does not run still owns its baseline)."""

    #: test id -> its baseline file
    paths: dict[str, Path] = field(default_factory=dict)
    #: a baseline file -> the older file it replaces (see :attr:`BaselineStore.legacy`)
    legacy: dict[Path, Path] = field(default_factory=dict)
    #: the test modules whose baseline folders are known in full (every test of them collected)
    files: set[Path] = field(default_factory=set)
    #: test id -> why it has no baseline file of its own (two tests that would share one)
    clashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, tests: Iterable[tuple[str, Path, Sequence[str]]], partial: Iterable[Path] = ()) -> StoreIndex:
        """From (test id, test file, names inside the file) of every collected test; ``partial``: the files
        only some tests of which were collected (a node-id selection)."""
        index = cls()
        by_file: dict[Path, str] = {}
        old_claims: dict[Path, list[str]] = {}
        for nodeid, test_file, names in tests:
            path = baseline_path(test_file, baseline_key(names))
            other = by_file.setdefault(path.resolve(), nodeid)
            if other != nodeid:
                index.clashes[nodeid] = index.clashes[other] = (
                    f"t2ibias: {other} and {nodeid} map to one baseline file {path}; rename one of them"
                )
            index.paths[nodeid] = path
            index.files.add(test_file)
            old_claims.setdefault(old_baseline_path(test_file, names[-1]), []).append(nodeid)
        index.files -= {f.resolve() for f in partial} | set(partial)
        new_files = {p.resolve() for p in index.paths.values()}
        for old, claims in old_claims.items():
            new = index.paths[claims[0]]
            # an older file two tests could claim (TestA::test_x, TestB::test_x) is nobody's: never read; a
            # name too long for a file was never written
            if len(claims) == 1 and new != old and len(old.name.encode()) <= 255 and old.resolve() not in new_files:
                index.legacy[new] = old
        return index

    def merge(self, other: StoreIndex) -> None:
        self.paths.update(other.paths)
        self.legacy.update(other.legacy)
        self.files |= other.files
        self.clashes.update(other.clashes)

    def to_json(self) -> str:
        return json.dumps(
            {
                "paths": {k: str(v) for k, v in self.paths.items()},
                "legacy": [[str(k), str(v)] for k, v in self.legacy.items()],
                "files": sorted(str(f) for f in self.files),
                "clashes": self.clashes,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StoreIndex:
        data = json.loads(text)
        return cls(
            paths={k: Path(v) for k, v in data["paths"].items()},
            legacy={Path(k): Path(v) for k, v in data["legacy"]},
            files={Path(f) for f in data["files"]},
            clashes=dict(data["clashes"]),
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
    event: str | None = None  # created / updated / unchanged, when approving
    baseline: BaselineRecord | None = None
    #: approving was refused: the run is beyond the cumulative allowance from the anchor (one line each)
    refused: list[str] = field(default_factory=list)
    #: approving could not write the file: why, in one line naming it (the old baseline is kept)
    unwritten: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the baseline could not be compared, in a few words (None when it was, or when approving)."""
        if self.unwritten:
            return "baseline not written"
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
        return not (self.missing or self.stale or self.corrupt or self.refused or self.unwritten) and not any(
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
    #: the test's syrupy assertion through which the baseline is compared (None without syrupy)
    syrupy: SnapshotAssertion | None = None
    #: the user's ``snapshot`` when the test wrote ``result == snapshot`` (compared through it instead)
    through: SnapshotAssertion | None = None
    #: the handed-out result -> the failure ``assert_no_regression`` would give (None: it passes), recording
    #: its checks: what ``result == snapshot`` judges by
    explain: Callable[[CategoryResult], str | None] | None = None
    #: the failure of the last ``result == snapshot`` (shown by the plugin's ``pytest_assertrepr_compare``)
    snapshot_failure: str | None = None
    _baseline: BaselineOutcome | None = None
    _comparable: tuple[BaselineRecord | None] | None = None

    @property
    def compared_with(self) -> BaselineRecord | None:
        """The approved baseline this test was compared with (None before comparing, or when it was not)."""
        return self._baseline.baseline if self._baseline is not None and not self.update else None

    @property
    def compared(self) -> bool:
        """Whether the baseline was compared (or approved) already."""
        return self._baseline is not None

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
        """Compare with (or, when approving, write) the approved baseline, once per test: through the test's
        syrupy assertion when there is one (syrupy reads the file and counts the snapshot; its extension
        asks :meth:`compare` for the verdict), else directly."""
        if self._baseline is None and self.syrupy is not None:
            self.snapshot(self.through or self.syrupy)
        return self.compare()

    def snapshot(self, assertion: SnapshotAssertion) -> None:
        """Run one syrupy assertion of this test's baseline: syrupy reads the file and counts the snapshot in
        its report; its extension asks this gate for the verdict (and, approving, for the write)."""
        assert self.syrupy is not None
        token = JUDGING.set(self)
        update = assertion.update_snapshots
        assertion.update_snapshots = self.update  # --t2i-update-baselines approves too
        try:
            assertion(extension_class=self.syrupy.extension_class) == self.result  # noqa: B015
        finally:
            assertion.update_snapshots = update
            JUDGING.reset(token)

    def passes(self) -> bool:
        """Whether ``assert_no_regression`` passes: the baseline was compared (or approved) and no check
        failed (a check the policy does not trust the scorer for is inconclusive, not failed)."""
        outcome = self.compare()
        if outcome.problem is not None:
            return False
        checks = inconclusive_for_scorer(outcome.checks, self.result, self.scorer_problem)
        return not any(c.verdict == "fail" for c in checks)

    def compare(self) -> BaselineOutcome:
        """The comparison itself (or, approving, the write), once per test; :meth:`baseline_outcome` is the
        entry point."""
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
        if stored is None:
            outcome.missing = True
            self.store.note(self.path, "missing")
            return outcome
        if isinstance(stored, str):
            outcome.corrupt = stored
            self.store.note(self.path, "corrupt")
            return outcome
        outcome.baseline = stored
        outcome.stale = staleness(stored, self.result.provenance)
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
        elif stored.anchor is not None:  # the same judgement an approval gets (judge.approval)
            outcome.checks += judge_approval(self.result, stored.anchor, self.rules, family)
        self.store.note(self.path, "compared")
        return outcome

    def _approve(self, outcome: BaselineOutcome, stored: BaselineRecord | None) -> BaselineOutcome:
        """Approve this run: it keeps the anchor of the baseline it replaces (or that baseline, as the
        anchor), unless resetting. It is refused only on evidence that it walked past the cumulative
        allowance from the anchor (:mod:`pytest_t2ibias.judge.approval`); a drift the data do not show is
        approved with a warning that names it."""
        assert self.path is not None and self.store is not None
        anchor = None if self.reset_anchor or stored is None else stored.as_anchor()
        if anchor is not None and not anchor_staleness(anchor, self.result.provenance):
            family = self.family(stored) if self.family else RegressionFamily()
            checks = judge_approval(self.result, anchor, self.rules, family)
            outcome.refused = refusals(checks)
            if outcome.refused:
                return outcome
            outcome.checks = drifts(checks)
        try:
            outcome.event = self.store.write(self.path, BaselineRecord.from_result(self.result, anchor=anchor))
        except BaselineWriteError as err:
            outcome.unwritten = str(err)
            return outcome
        outcome.updated = True
        return outcome


def comparable_baseline(
    store: BaselineStore, path: Path, result: CategoryResult, rules: dict[str, MetricRule]
) -> BaselineRecord | None:
    """The baseline at ``path`` when it can be compared with ``result``: present, sound, not stale, and
    holding every metric the rules gate (otherwise the test reports why, and nothing is compared)."""
    stored, _ = store.read(path)
    if not isinstance(stored, BaselineRecord) or staleness(stored, result.provenance):
        return None
    try:
        check_gated(stored, [m for m, r in rules.items() if r.regression and m in result.metrics], str(path))
    except CorruptBaselineError:
        return None
    return stored


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


#: The attribute in which a result or aggregates handed out by a fixture carry their test's gate.
_GATE = "_t2ibias_gate"
Judged = TypeVar("Judged", "CategoryResult", "Aggregates")
#: The gate whose syrupy assertion is running (syrupy's extension API hands the extension only the data
#: and the test's location; this is how it finds the test's store, path and verdict).
JUDGING: ContextVar[Gate | None] = ContextVar("t2ibias_judging", default=None)


@dataclass(frozen=True, kw_only=True, eq=False)
class GatedResult(CategoryResult):
    """The copy of a category's result a test gets: plain data, plus ``== snapshot``.

    ``assert t2ibias_result == snapshot`` (syrupy's fixture, whatever its default extension) judges the
    result against its approved baseline by the test's gate, as ``assert_no_regression`` does; a failed
    one shows the same message. Equal to a plain result with the same fields.
    """

    def __eq__(self, other: object) -> bool:
        from syrupy.assertion import SnapshotAssertion

        if isinstance(other, SnapshotAssertion):
            gate = gate_for(self)
            if gate is None or gate.explain is None or gate.syrupy is None:
                raise ValueError(
                    "`result == snapshot` needs the result of the t2ibias_result / t2ibias_evaluate fixtures, "
                    "inside its test"
                )
            if gate.compared:  # an assertion helper compared already: syrupy still sees this assertion
                gate.snapshot(other)
            else:
                gate.through = other  # compared through the user's own assertion (syrupy's message needs it)
            gate.snapshot_failure = gate.explain(self)
            return gate.snapshot_failure is None
        if isinstance(other, CategoryResult):
            compared = [f.name for f in fields(CategoryResult) if f.compare]
            return all(getattr(self, name) == getattr(other, name) for name in compared)
        return NotImplemented

    __hash__ = CategoryResult.__hash__


def with_gate(judged: Judged, gate: Gate | AggregateGate) -> Judged:
    """A copy of ``judged`` (a result, or aggregates) that carries ``gate``: each test judges a copy of its
    own (the session evaluates a category once; two tests may both judge it)."""
    copy = (
        GatedResult(**{f.name: getattr(judged, f.name) for f in fields(CategoryResult)})
        if isinstance(judged, CategoryResult)
        else replace(judged)
    )
    object.__setattr__(copy, _GATE, gate)  # a frozen dataclass; the gate is none of its fields
    return copy  # type: ignore[return-value]  # a GatedResult is a CategoryResult


def snapshot_explanation(op: str, left: object, right: object) -> list[str] | None:
    """The failure of ``result == snapshot``, for pytest's assertion message (None: not one of ours)."""
    from syrupy.assertion import SnapshotAssertion

    if op != "==" or not (isinstance(left, SnapshotAssertion) or isinstance(right, SnapshotAssertion)):
        return None
    judged = left if isinstance(right, SnapshotAssertion) else right
    gate = gate_for(judged) if isinstance(judged, GatedResult) else None
    if gate is None or gate.snapshot_failure is None:
        return None
    return gate.snapshot_failure.splitlines()


def release_gate(judged: object) -> Gate | AggregateGate | None:
    """After its test: ``judged`` carries no gate any more (a result kept past its test is judged by no
    test's rules); the gate it carried, if any."""
    gate = getattr(judged, _GATE, None)
    if not isinstance(gate, Gate | AggregateGate):
        return None
    object.__delattr__(judged, _GATE)
    return gate


def gate_for(result: CategoryResult) -> Gate | None:
    """The gate of a result handed out by the ``t2ibias_result`` / ``t2ibias_evaluate`` fixtures."""
    gate = getattr(result, _GATE, None)
    return gate if isinstance(gate, Gate) else None


def aggregate_gate_for(aggregates: Aggregates) -> AggregateGate | None:
    """The gate of aggregates handed out by the ``t2ibias_aggregate`` fixture."""
    gate = getattr(aggregates, _GATE, None)
    return gate if isinstance(gate, AggregateGate) else None
