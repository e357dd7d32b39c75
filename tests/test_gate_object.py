"""A gate is an object the result carries, not a lookup (issue 25): the fixtures hand out a copy of the
result with its test's gate; the assertion helpers find it there; after the test the copy has none."""

from __future__ import annotations

import pytest

from pytest_t2ibias import snapshot
from pytest_t2ibias.assertions import assert_no_regression
from pytest_t2ibias.metrics.result import CategoryResult
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.snapshot import Gate, gate_for, release_gate, with_gate


def _result() -> CategoryResult:
    provenance = Provenance(
        category="doctor", suite="s", suite_hash="h", mode="strict", model="m", scorer="c", n=0, seed=0,
        images_per_prompt=0,
    )  # fmt: skip
    return CategoryResult(provenance=provenance, metrics={})


def test_the_handed_out_copy_carries_the_gate_and_the_cached_result_does_not() -> None:
    cached = _result()
    gate = Gate(result=cached, rules={})
    handed = with_gate(cached, gate)
    assert handed is not cached and handed == cached
    assert gate_for(handed) is gate and gate_for(cached) is None
    assert gate_for(with_gate(cached, Gate(result=cached, rules={}))) is not gate  # one gate per test


def test_after_its_test_the_result_has_no_gate() -> None:
    handed = with_gate(_result(), Gate(result=_result(), rules={}))
    assert isinstance(release_gate(handed), Gate)
    assert gate_for(handed) is None and release_gate(handed) is None
    with pytest.raises(ValueError, match="has no gate"):
        assert_no_regression(handed)


def test_there_is_no_module_level_registry_of_gates() -> None:
    assert not [name for name, value in vars(snapshot).items() if name.isupper() and isinstance(value, dict)]
