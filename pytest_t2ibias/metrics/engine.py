"""Compute a category's metrics from its records, in paper or strict mode."""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pytest_t2ibias.metrics import catalog  # noqa: F401 (registers the built-in metrics)
from pytest_t2ibias.metrics.counts import Stats, point_stats
from pytest_t2ibias.metrics.registry import (
    METRICS,
    CategoryData,
    MetricDef,
    MetricUnavailable,
    added_by,
    metric_def,
    point_value,
)
from pytest_t2ibias.suites.schema import VIEW, register_metric_check
from pytest_t2ibias.types import MetricValue, Mode

if TYPE_CHECKING:
    from pytest_t2ibias.records import ImageRecord
    from pytest_t2ibias.suites.schema import Category, Suite

#: Requirements met by the records, not by the suite.
_RECORD_REQUIREMENTS = ("attribute", "parity", "reference", "texts", "embeddings", "clip_scores")


@dataclass(frozen=True)
class CategoryMetrics:
    """The metrics of one category: ``metrics[id]`` is a value or ``None``; ``reasons[id]`` says why."""

    category: str
    n: int
    metrics: dict[str, MetricValue]
    reasons: dict[str, str] = field(default_factory=dict)


def resolvable(metric_id: str, spec: Category) -> bool:
    """Whether ``metric_id`` names a metric of this category (registered, a share, or a context ratio)."""
    return metric_def(metric_id, spec) is not None


def _missing_requirements(metric_id: str, spec: Category) -> list[str]:
    if metric_id not in METRICS:
        return ["attribute"] if metric_id in spec.shares and spec.attribute is None else []
    missing = []
    for need in METRICS[metric_id].requires:
        if need == "attribute" and spec.attribute is None:
            missing.append("an `attribute`")
        elif need == "parity" and spec.parity is None:
            missing.append("a `parity` split")
        elif need == "reference" and spec.compare_to is None:
            missing.append("a `compare_to` reference")
        elif need not in _RECORD_REQUIREMENTS and not spec.term_list(need):
            missing.append(f"a non-empty `terms.{need}` list")
    return missing


def check_category_metrics(name: str, spec: Category) -> None:
    """Fail on a metric id that does not exist or whose inputs the category does not declare."""
    for metric_id in spec.metrics:
        if VIEW in metric_id:  # `<metric>@<attribute>`: the suite checks its inputs on the category's view
            if metric_def(metric_id, spec) is None and VIEW not in metric_id.partition(VIEW)[0]:
                base = metric_id.partition(VIEW)[0]
                if metric_id.partition(VIEW)[2] in spec.measured_attributes() and resolvable(base, spec):
                    raise ValueError(
                        f"categories.{name}.metrics: {metric_id!r}: only metrics of an attribute's labels can be "
                        f"measured on another attribute, and {base!r} is not one"
                    )
            continue
        if metric_def(metric_id, spec) is None:
            # what this category can use: its own shares and context ratios first (the likeliest typos),
            # then the registered metrics whose inputs it declares
            own = sorted(spec.shares) + [f"{c}_ratio" for c in sorted(spec.context)]
            valid = own + [m for m in sorted(METRICS) if not _missing_requirements(m, spec)]
            close = difflib.get_close_matches(metric_id, [*own, *METRICS], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"categories.{name}.metrics: unknown metric {metric_id!r}{hint}; valid: {valid}")
        missing = _missing_requirements(metric_id, spec)
        if missing:
            raise ValueError(f"categories.{name}.metrics: {metric_id!r} needs {' and '.join(missing)}")


register_metric_check(check_category_metrics)  # the suite schema checks each category's `metrics` line with it


def category_data(suite: Suite, category: str, records: Sequence[ImageRecord], mode: Mode) -> CategoryData:
    """Gather one category's records into label and presence arrays (records keep their order)."""
    spec = suite.categories[category]
    attribute = suite.attribute_of(category)
    wrong = [r.image_id for r in records if r.category != category]
    if wrong:
        raise ValueError(f"`records` of category {category!r} include other categories: {wrong[:5]}")
    labels: tuple[str, ...] = ()
    if attribute is not None:
        assert spec.attribute is not None
        missing = [r.image_id for r in records if spec.attribute not in r.labels]
        if missing:
            raise ValueError(f"`records` lack a {spec.attribute!r} label: {missing[:5]}")
        labels = tuple(r.labels[spec.attribute] for r in records)
    present = {}
    for list_name in spec.list_names():
        terms = spec.term_list(list_name)
        column = {t: j for j, t in enumerate(terms)}
        rows: list[int] = []
        columns: list[int] = []
        find = column.get
        for i, record in enumerate(records):  # only the terms found: lists are long, finds few
            # a term listed twice sets the same cell twice (no set to dedupe: it cost a fifth of this loop)
            for j in map(find, record.present.get(list_name, ())):
                if j is not None:
                    rows.append(i)
                    columns.append(j)
        matrix = np.zeros((len(records), len(terms)), dtype=bool)
        matrix[rows, columns] = True
        present[list_name] = matrix
    texts = tuple(r.caption or "" for r in records)
    embeddings = clip = seeds = None
    if records and all(r.embedding is not None for r in records):
        embeddings = np.array([r.embedding for r in records], dtype=np.float64)
    if records and all(r.clip_score is not None for r in records):
        clip = np.array([r.clip_score for r in records], dtype=np.float64)
    if records and all(r.seed is not None for r in records):
        seeds = np.array([r.seed for r in records], dtype=np.int64)
    # the other annotated attributes, for the metrics measured on them (`fd@ethnicity`); a record without
    # a label of one (made before it was annotated) has it unknown
    annotations = {
        name: (suite.attributes[name], tuple(r.labels.get(name, "unknown") for r in records))
        for name in spec.also_annotate
        if name != spec.attribute
    }
    return CategoryData(
        category, spec, attribute, mode, labels, present, texts, embeddings, clip, seeds, annotations=annotations
    )


def metric_ids(spec: Category, mode: Mode, embeddings: bool = False) -> list[str]:
    """The metrics a category reports: suite order, then those strict mode adds (to a category with an
    attribute), then those image embeddings add (``MetricDef.added_by``)."""
    ids = list(spec.metrics)
    if mode == "strict" and spec.attribute is not None:
        ids += [m for m in added_by("strict") if m not in ids]
    if embeddings:
        ids += [m for m in added_by("embeddings") if m not in ids]
    return ids


def compute_category(suite: Suite, category: str, records: Sequence[ImageRecord], mode: Mode) -> CategoryMetrics:
    """Every metric of ``category`` over ``records``; an unavailable metric is ``None`` with a reason."""
    return compute_data(category_data(suite, category, records, mode))


def compute_data(data: CategoryData, only: Collection[str] | None = None) -> CategoryMetrics:
    """Every metric (or those in ``only``) of already-gathered category data.

    Count metrics are evaluated once on the category's sufficient statistics; data metrics on the data;
    a metric of another attribute (``fd@ethnicity``) on the category's view of that attribute.
    """
    values: dict[str, MetricValue] = {}
    reasons: dict[str, str] = {}
    stats = point_stats(data) if data.n > 0 else None
    for metric_id in reported_metrics(data):
        if only is not None and metric_id not in only:
            continue
        definition = metric_def(metric_id, data.spec)
        assert definition is not None  # the suite schema checked every id
        if definition.view is not None:
            base = metric_id.partition(VIEW)[0]
            try:
                on_view = compute_data(data.view(definition.view), only=[base])
            except MetricUnavailable as why:  # the images carry no labels of that attribute
                values[metric_id], reasons[metric_id] = None, str(why)
                continue
            values[metric_id] = on_view.metrics.get(base)
            if base in on_view.reasons:
                reasons[metric_id] = on_view.reasons[base]
            continue
        try:
            if stats is None:
                raise MetricUnavailable("no images in category")
            value = _evaluate(definition, data, stats)
        except MetricUnavailable as why:
            value, reasons[metric_id] = None, str(why)
        if isinstance(value, float) and not math.isfinite(value):
            value, reasons[metric_id] = None, "not a finite number"
        values[metric_id] = value
    return CategoryMetrics(data.name, data.n, values, reasons)


def reported_metrics(data: CategoryData) -> list[str]:
    """The metrics ``data`` reports (embedding extras only when the records carry embeddings)."""
    has_embeddings = data.embeddings is not None or data.clip_scores is not None
    return metric_ids(data.spec, data.mode, embeddings=has_embeddings)


def _evaluate(definition: MetricDef, data: CategoryData, stats: Stats) -> MetricValue:
    if definition.counts is None:
        return definition.fn(data)
    return point_value(definition.counts(stats))  # the statistics are gathered once for every count metric
