"""The bias baselines as a syrupy extension: syrupy is the snapshot layer, the gate is the comparator.

Every bias test's baseline comparison runs as a syrupy assertion of that test (the gate makes it, see
:meth:`pytest_t2ibias.snapshot.Gate.baseline_outcome`), so a repository that uses syrupy sees one
end-of-session report ("N snapshots passed, M updated"), ``--snapshot-update`` approves, and ``assert
t2ibias_result == snapshot`` works. The file is syrupy's single-file layout under ``__baselines__/``:
``<test dir>/__baselines__/<module>/<test key>.json`` (one file per test, whatever the assertion index).

What syrupy would decide alone is overridden, each for a guarantee (docs/plugin.md, "Baselines and
syrupy"):

* **matches** asks the gate (policy rules, intervals, the run's correction), not byte equality: a model
  whose metrics moved within noise passes;
* **write** is the gate's approval (refused beyond the cumulative allowance from the anchor; atomic; only
  by a test that compared): syrupy's own write path only confirms the gate wrote, and fails otherwise;
* **discovery** finds nothing, so syrupy never counts a bias baseline as unused and never deletes one
  (it deletes every unused file under ``--snapshot-update``, including the baseline of a test that
  errored before comparing: ``tests/integration/test_syrupy_layer.py`` shows it); orphans are
  ``--t2i-prune-baselines``'s, at the end of a full passing run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.data import SnapshotCollection, SnapshotCollections
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from pytest_t2ibias.errors import T2IBiasError
from pytest_t2ibias.judge.baseline import BaselineRecord
from pytest_t2ibias.snapshot import BASELINE_DIR, JUDGING, Gate, baseline_stem

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation
    from syrupy.types import SerializableData, SerializedData, SnapshotIndex


def _judging() -> Gate:
    gate = JUDGING.get()
    if gate is None:  # the extension named by hand, outside a gate: nothing to judge or approve with
        raise T2IBiasError(
            "bias baselines are compared by their test's gate: write `assert t2ibias_result == snapshot` or "
            "assert_no_regression(t2ibias_result), not snapshot(extension_class=BaselineExtension)"
        )
    return gate


class BaselineExtension(SingleFileSnapshotExtension):
    """syrupy's storage and report for the bias baselines; every decision is the gate's."""

    snapshot_dirname = BASELINE_DIR
    file_extension = "json"
    _write_mode = WriteMode.TEXT

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        # syrupy's single-file layout, in the baselines' folder (its own ignores a subclass's folder name)
        return str(Path(test_location.filepath).parent / BASELINE_DIR / test_location.basename)

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation, index: SnapshotIndex = 0) -> str:
        # one baseline per test (the store's key: classes and name), whatever the assertion index
        return baseline_stem(test_location.snapshot_name_parametrized)

    def serialize(self, data: SerializableData, **_: Any) -> SerializedData:
        gate = _judging()
        return BaselineRecord.from_result(gate.result).to_json()

    def read_snapshot_data_from_location(
        self, *, snapshot_location: str, snapshot_name: str, session_id: str
    ) -> SerializableData | None:
        # the store reads (once per run, an older-named file while the new one is absent, a FIFO as corrupt)
        gate = _judging()
        assert gate.store is not None and gate.path is not None
        if gate.compared and gate.compare().event == "created":  # a second assertion after the approval
            return None
        stored, _ = gate.store.read(gate.path)
        return stored.to_json() if isinstance(stored, BaselineRecord) else stored

    def matches(self, *, serialized_data: SerializableData, snapshot_data: SerializableData) -> bool:
        gate = _judging()
        if gate.update:  # approving: matched when the file holds this run already; else syrupy "writes"
            outcome = gate.compare()
            return outcome.updated and outcome.event == "unchanged"
        return gate.passes()

    @classmethod
    def write_snapshot_collection(
        cls, *, snapshot_collection: SnapshotCollection, name_order: dict[str, int] | None = None
    ) -> None:
        # syrupy writes when approving and the file did not hold this run: the gate approves (or refuses)
        # and the store writes atomically; syrupy's own write would bypass both
        outcome = _judging().compare()
        if not outcome.updated:
            raise T2IBiasError(
                outcome.unwritten
                or "; ".join(outcome.refused)
                or f"baseline {outcome.location} not approved (approve with --snapshot-update or "
                "--t2i-update-baselines)"
            )

    def discover_snapshots(
        self, *, test_location: PyTestLocation, ignore_extensions: list[str] | None = None
    ) -> SnapshotCollections:
        return SnapshotCollections()  # see the module's docstring: syrupy never deletes a bias baseline

    def delete_snapshots(self, *, snapshot_location: str, snapshot_names: set[str]) -> None:
        return None  # unreachable (nothing is discovered); a bias baseline is deleted only by the prune rule

    def diff_lines(self, serialized_data: SerializedData, snapshot_data: SerializedData) -> Iterator[str]:
        gate = JUDGING.get()
        failure = gate.snapshot_failure if gate is not None else None
        yield from (failure or "").splitlines()


def baseline_assertion(request: pytest.FixtureRequest, update: bool) -> SnapshotAssertion | None:
    """The syrupy assertion through which the requesting test's gate compares its baseline: syrupy's own
    ``snapshot`` fixture's session and test location (a conftest override of ``snapshot`` included) with
    this extension; None when syrupy is not active (``-p no:syrupy``)."""
    try:
        snapshot = request.getfixturevalue("snapshot")
    except pytest.FixtureLookupError:
        return None
    if not isinstance(snapshot, SnapshotAssertion):
        return None
    return SnapshotAssertion(
        update_snapshots=update,
        extension_class=BaselineExtension,
        test_location=snapshot.test_location,
        session=snapshot.session,
    )
