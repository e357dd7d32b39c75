"""The one result model: what every command prints as JSON and every report reads.

``t2ibias replay/evaluate --format json``, the plugin's ``--t2i-report``, the hand-off from xdist workers
to the controller and the terminal summary all use :class:`RunResult` (versioned by ``format``; its JSON
schema is published in ``docs/results.md`` and checked by a test). The approved-baseline file keeps its
own schema (:class:`~pytest_t2ibias.judge.baseline.BaselineRecord`).

Shape, per category: ``metrics`` (id -> value: a number, a group -> share mapping, or null),
``intervals`` (id -> interval, for the scalar metrics that have one), ``null_reasons`` (id -> why the
value is null), and the per-image ``images``; per test (pytest runs): its ``checks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import pytest_t2ibias
from pytest_t2ibias.judge.verdicts import Check, Verdict, verdict_of, worst_of
from pytest_t2ibias.masking import mask_credentials
from pytest_t2ibias.metrics.intervals import Interval, MetricEstimate
from pytest_t2ibias.metrics.scorer_card import ScorerCard

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.aggregate import Aggregates
    from pytest_t2ibias.metrics.result import CategoryResult

#: Version of the JSON shape; bumped on any change a reader must know about.
RESULTS_FORMAT: Literal[1] = 1

#: The largest magnitude of a metric value: every metric is a share, a difference of shares, a ratio of
#: them or a divergence, far below this; a results file above it (``1e308``) was not written by a run.
MAX_METRIC = 1e6
#: The largest count of images or rows a results file may state (a run of 100,000 images per prompt over
#: the largest suite stays far below).
MAX_COUNT = 10**12

#: A metric value: finite and within :data:`MAX_METRIC` (``t2ibias report`` refuses ``1e308`` and ``NaN``).
Value = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_METRIC, le=MAX_METRIC)]
#: A count: 0 or more (``t2ibias report`` refuses ``n: -5``) and at most :data:`MAX_COUNT`.
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageResult(_Model):
    """One image: its id, seed and prompt, where it is, and what the scorer said about it."""

    id: str
    seed: int | None = None
    prompt: str | None = None
    path: str | None = None
    caption: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    present: dict[str, list[str]] = Field(default_factory=dict)


class BaselineImages(_Model):
    """The approved baseline's images of a category, for showing what changed: the model that drew them
    and, per image, its seed, labels, terms and (when the image cache still holds it) its path."""

    model: str
    images: list[ImageResult] = Field(default_factory=list)


class CategoryResultModel(_Model):
    """One category's metrics with their intervals and the inputs that made them."""

    suite: str
    suite_hash: str | None = None
    model: str
    scorer: str | None = None
    mode: Literal["paper", "strict"]
    n: Count
    seed: int | None = None
    images_per_prompt: Annotated[int, Field(ge=1, le=MAX_COUNT)] | None = None
    metrics: dict[str, Value | dict[str, Value] | None]
    intervals: dict[str, Interval] = Field(default_factory=dict)
    null_reasons: dict[str, str] = Field(default_factory=dict)
    images: list[ImageResult] = Field(default_factory=list)
    baseline: BaselineImages | None = Field(
        default=None, description="The approved baseline's images (pytest runs that compared one)."
    )
    raw_metrics: dict[str, Value | dict[str, Value] | None] | None = Field(
        default=None,
        description="With a scorer card: the metrics before the correction for the scorer's errors "
        "(`metrics` are then corrected).",
    )
    raw_intervals: dict[str, Interval] = Field(default_factory=dict, description="The intervals of `raw_metrics`.")
    scorer_card: ScorerCard | None = Field(default=None, description="The scorer card the metrics were corrected with.")

    @classmethod
    def from_result(cls, result: CategoryResult, images: bool = True) -> CategoryResultModel:
        raw = result.raw_metrics
        return cls(
            **result.provenance.model_dump(exclude={"category"}),  # a category is keyed by its name
            metrics={m: e.value for m, e in result.metrics.items()},
            intervals={m: e.interval for m, e in result.metrics.items() if e.interval is not None},
            null_reasons={m: e.reason for m, e in result.metrics.items() if e.reason is not None},
            raw_metrics=None if raw is None else {m: e.value for m, e in raw.items()},
            raw_intervals={} if raw is None else {m: e.interval for m, e in raw.items() if e.interval is not None},
            scorer_card=result.scorer_card,
            images=[
                ImageResult(
                    id=r.image_id,
                    seed=r.seed,
                    prompt=r.prompt,
                    path=r.image_path,
                    caption=r.caption,
                    labels=dict(r.labels),
                    present={k: list(v) for k, v in r.present.items()},
                )
                for r in result.records
            ]
            if images
            else [],
        )

    def estimates(self) -> dict[str, MetricEstimate]:
        """The metrics as :class:`MetricEstimate` (value, interval, reason)."""
        return {m: MetricEstimate(v, self.intervals.get(m), self.null_reasons.get(m)) for m, v in self.metrics.items()}


class BiasTestResult(_Model):
    """One bias test of a pytest run: its category, overall verdict and every check it made."""

    nodeid: str
    category: str
    verdict: Verdict
    checks: list[Check] = Field(default_factory=list)
    problem: str | None = Field(
        default=None, description="Why the test could not compare with its baseline (no, stale or corrupt baseline)."
    )

    @classmethod
    def from_checks(cls, nodeid: str, category: str, checks: list[Check], problem: str | None = None) -> BiasTestResult:
        """A test's result from its checks (its verdict is the worst of them; a problem makes it fail)."""
        verdict = "fail" if problem else verdict_of(checks)
        return cls(nodeid=nodeid, category=category, verdict=verdict, checks=checks, problem=problem)


#: A category's verdict in a run: the worst of its tests', or "not gated" when no check judged it.
CategoryVerdictName = Literal["fail", "warn", "pass", "not gated"]


@dataclass(frozen=True)
class CategoryVerdict:
    """What a run decided about one category, computed once (:meth:`RunResult.category_verdicts`) and
    read by every report: its verdict, the problems and metrics that failed, and the metrics that warned."""

    verdict: CategoryVerdictName
    problems: tuple[str, ...]
    failed: tuple[str, ...]
    warned: tuple[str, ...]


def category_verdict(tests: Iterable[BiasTestResult]) -> CategoryVerdict:
    """The verdict of a category from its tests: a problem (no, stale or corrupt baseline) fails it, else
    the worst of its checks; "not gated" when none of its tests checked anything."""
    tests = list(tests)
    checks = [c for t in tests for c in t.checks]
    problems = tuple(dict.fromkeys(t.problem for t in tests if t.problem))
    judged = bool(checks or problems)
    verdict: CategoryVerdictName = worst_of(t.verdict for t in tests) if judged else "not gated"
    return CategoryVerdict(
        verdict=verdict,
        problems=problems,
        failed=tuple(dict.fromkeys(c.metric for c in checks if c.verdict == "fail")),
        warned=tuple(dict.fromkeys(c.metric for c in checks if c.verdict == "warn")),
    )


class SkippedTest(_Model):
    """A bias test that did not run, and why (pytest's skip reason)."""

    nodeid: str
    reason: str


class WorstCategoryModel(_Model):
    """One of the categories that amplify their reference most."""

    category: str
    amplification: Value
    gap: Value
    n: Count


class AggregatesModel(_Model):
    """Aggregates across the categories with a reference (:mod:`pytest_t2ibias.metrics.aggregate`)."""

    categories: list[str] = Field(default_factory=list, description="The categories aggregated.")
    metrics: dict[str, Value | None] = Field(default_factory=dict)
    intervals: dict[str, Interval] = Field(default_factory=dict)
    null_reasons: dict[str, str] = Field(default_factory=dict)
    worst: list[WorstCategoryModel] = Field(default_factory=list, description="Largest amplifications first.")

    @classmethod
    def from_aggregates(cls, aggregates: Aggregates) -> AggregatesModel:
        metrics = aggregates.metrics
        return cls(
            categories=list(aggregates.categories),
            metrics={m: e.value if isinstance(e.value, float) else None for m, e in metrics.items()},
            intervals={m: e.interval for m, e in metrics.items() if e.interval is not None},
            null_reasons={m: e.reason for m, e in metrics.items() if e.reason is not None},
            worst=[WorstCategoryModel(**vars(w)) for w in aggregates.worst],
        )


class RunResult(_Model):
    """The results of one run: a replay, an evaluation, or a pytest session (then with its tests)."""

    format: Literal[1] = RESULTS_FORMAT
    package_version: str = Field(default_factory=lambda: pytest_t2ibias.__version__)
    suite: str | None = None
    mode: Literal["paper", "strict"] | None = None
    model: str | None = None
    scorer: str | None = None
    categories: dict[str, CategoryResultModel] = Field(default_factory=dict)
    tests: list[BiasTestResult] = Field(default_factory=list)
    not_run: list[SkippedTest] = Field(default_factory=list, description="Bias tests that were skipped.")
    baselines: dict[str, str] = Field(
        default_factory=dict,
        description="Baseline file -> what the run did with it: compared, created, updated, unchanged, "
        "migrated (an older-named file moved to its test's new name), missing, stale or corrupt.",
    )
    baseline_changes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="An updated baseline file -> what re-approving changed, one line each: the metrics that "
        "moved ('male_share 0.5200 -> 0.5400'), else the inputs that changed.",
    )
    aggregates: AggregatesModel | None = Field(
        default=None,
        description="Aggregates across the categories that declare a reference (`t2ibias evaluate`, or a "
        "pytest run with a `t2ibias_aggregate` test).",
    )
    unmatched_rows: Count = Field(default=0, description="Caption rows whose image name matches no category.")
    unmatched_images: list[str] = Field(default_factory=list, description="Their image names, in file order.")
    dropped_rows: Count = Field(default=0, description="Caption rows without a name or a caption.")
    duplicate_rows: Count = Field(
        default=0,
        description="Caption rows whose image name an earlier row already had (paper mode counts each again, as "
        "the authors' notebooks did; strict mode keeps the first).",
    )

    @classmethod
    def from_results(
        cls,
        results: Iterable[CategoryResult],
        tests: Sequence[BiasTestResult] = (),
        *,
        model: str | None = None,
        images: bool = True,
        **fields: Any,
    ) -> RunResult:
        categories = {r.category: CategoryResultModel.from_result(r, images) for r in results}
        return cls.of(categories, tests, model=model, **fields)

    @classmethod
    def of(
        cls,
        categories: dict[str, CategoryResultModel],
        tests: Sequence[BiasTestResult] = (),
        *,
        model: str | None = None,
        **fields: Any,
    ) -> RunResult:
        """A run of these categories; suite, mode, model and scorer are read off the first."""
        first = next(iter(categories.values()), None)
        return cls(
            suite=first.suite if first else None,
            mode=first.mode if first else None,
            model=model or (first.model if first else None),
            scorer=first.scorer if first else None,
            categories=categories,
            tests=list(tests),
            **fields,
        )

    @classmethod
    def merge(cls, runs: Sequence[RunResult]) -> RunResult:
        """Results of several processes (xdist workers) as one; tests in node-id order."""
        categories: dict[str, CategoryResultModel] = {}
        tests: list[BiasTestResult] = []
        not_run: list[SkippedTest] = []
        baselines: dict[str, str] = {}
        changes: dict[str, list[str]] = {}
        aggregates = next((run.aggregates for run in runs if run.aggregates is not None), None)
        for run in runs:
            for name, category in run.categories.items():
                # every worker measures every gated category (for the run's one correction); the one whose
                # test compared it with its baseline carries the baseline's images
                if name not in categories or category.baseline is not None:
                    categories[name] = category
            tests.extend(run.tests)
            not_run.extend(run.not_run)
            baselines.update(run.baselines)
            changes.update(run.baseline_changes)
        return cls.of(
            categories,
            sorted(tests, key=lambda t: t.nodeid),
            not_run=sorted(not_run, key=lambda t: t.nodeid),
            baselines=dict(sorted(baselines.items())),
            baseline_changes=dict(sorted(changes.items())),
            aggregates=aggregates,
        )

    def category_verdicts(self) -> dict[str, CategoryVerdict]:
        """Each category's verdict (:func:`category_verdict`): the measured categories in order, then the
        categories only tests name (the aggregates across categories)."""
        names = list(self.categories) + [t.category for t in self.tests if t.category not in self.categories]
        return {name: category_verdict(t for t in self.tests if t.category == name) for name in dict.fromkeys(names)}

    def to_json(self, indent: int | None = 1) -> str:
        # a model, scorer or image location given as a URL keeps its credentials out of the file
        return mask_credentials(self.model_dump_json(indent=indent))
