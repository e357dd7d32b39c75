"""Results of a whole suite: per-category metrics, in the JSON shape every command prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_t2ibias.metrics.engine import CategoryMetrics
from pytest_t2ibias.types import Mode


@dataclass
class SuiteResult:
    model: str
    mode: Mode
    suite: str
    categories: dict[str, CategoryMetrics]
    unmatched: list[str] = field(default_factory=list)
    scorer: str | None = None
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ``{"model", "mode", "categories": {name: {"n", "metrics"}}}``.

        A category with unavailable metrics also carries ``"null_reasons"``; rows whose image name
        matches no category are counted in ``"unmatched_rows"``.
        """
        categories: dict[str, Any] = {}
        for name, result in self.categories.items():
            entry: dict[str, Any] = {"n": result.n, "metrics": result.metrics}
            if result.reasons:
                entry["null_reasons"] = result.reasons
            categories[name] = entry
        out: dict[str, Any] = {"model": self.model, "mode": self.mode, "suite": self.suite}
        if self.scorer is not None:
            out["scorer"] = self.scorer
        out["categories"] = categories
        out["unmatched_rows"] = len(self.unmatched)
        return out
