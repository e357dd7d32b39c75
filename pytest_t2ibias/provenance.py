"""Where one category's numbers came from: every input that changes them, in one object.

A category's result (:class:`~pytest_t2ibias.metrics.result.CategoryResult`) carries one; an approved
baseline (:class:`~pytest_t2ibias.judge.baseline.BaselineRecord`) is one plus what was approved (its
fields stay at the top level of the file); the results JSON
(:class:`~pytest_t2ibias.results.CategoryResultModel`) is built from one. Whether a baseline can be
compared with a run, or an anchor with its baseline, is a diff of provenances (:meth:`Provenance.changes`).

>>> old = Provenance(suite="s", suite_hash="h", category="doctor", mode="strict", model="m1", scorer="c",
...                  n=100, seed=0, images_per_prompt=100)
>>> old.changes(old.model_copy(update={"model": "m2"}))  # a new model is what a comparison is for
[]
>>> old.changes(old.model_copy(update={"scorer": "c2", "n": 50}))
["scorer: 'c' -> 'c2'", 'n: 100 -> 50']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from pytest_t2ibias.types import Mode


class Provenance(BaseModel):
    """The inputs that made one category's numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    suite_hash: str
    category: str
    mode: Mode
    model: str
    scorer: str
    n: int
    seed: int
    images_per_prompt: int

    #: Inputs that must match for a baseline to be compared with a run at all (the model may differ:
    #: comparing a new model with the approved one is the point).
    COMPARABLE: ClassVar[tuple[str, ...]] = (
        "suite", "suite_hash", "category", "mode", "scorer", "n", "seed", "images_per_prompt",
    )  # fmt: skip
    #: Inputs an anchor must share with the baseline that carries it (it may have another n, seed or size).
    ANCHOR: ClassVar[tuple[str, ...]] = ("suite", "suite_hash", "category", "mode", "scorer")

    def changes(self, other: Provenance, names: Sequence[str] = COMPARABLE) -> list[str]:
        """What differs from ``self`` to ``other`` among ``names``, one ``name: old -> new`` each."""
        return [
            f"{name}: {getattr(self, name)!r} -> {getattr(other, name)!r}"
            for name in names
            if getattr(self, name) != getattr(other, name)
        ]

    @classmethod
    def of(cls, source: object) -> Provenance:
        """The provenance held in ``source``'s own fields (a baseline record, which embeds one)."""
        return cls(**{name: getattr(source, name) for name in cls.model_fields})
