"""What the measure stage hands on: one category's metrics with intervals, the inputs that made them,
and the per-image records behind them. Plain data: nothing here judges it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pytest_t2ibias.metrics import groupwise
from pytest_t2ibias.metrics.data import CategoryData, MetricUnavailable
from pytest_t2ibias.metrics.engine import category_data, reported_metrics
from pytest_t2ibias.metrics.estimates import estimates
from pytest_t2ibias.metrics.intervals import N_BOOT, MetricEstimate
from pytest_t2ibias.provenance import Provenance
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import VIEW
from pytest_t2ibias.types import MetricValue, Mode

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.scorer_card import ScorerCard
    from pytest_t2ibias.suites.schema import Suite


@dataclass(frozen=True, kw_only=True)
class CategoryResult:
    """One category of one run: everything a gate, a baseline and a report need."""

    #: the inputs that made the numbers (suite, category, mode, model, scorer, n, seed, images per prompt)
    provenance: Provenance
    metrics: dict[str, MetricEstimate]
    records: Sequence[ImageRecord] = ()
    #: the columns the metrics were computed from (kept so comparisons do not gather them again)
    data: CategoryData | None = field(default=None, compare=False, repr=False)
    #: with a scorer card: the uncorrected metrics (``metrics`` are then corrected for misclassification)
    raw_metrics: dict[str, MetricEstimate] | None = None
    #: the scorer card applied (``None``: none, or none for this category's attribute)
    scorer_card: ScorerCard | None = field(default=None, compare=False, repr=False)

    # the provenance's fields, read as the result's own (``result.category``)
    @property
    def category(self) -> str:
        return self.provenance.category

    @property
    def suite(self) -> str:
        return self.provenance.suite

    @property
    def suite_hash(self) -> str:
        return self.provenance.suite_hash

    @property
    def mode(self) -> Mode:
        return self.provenance.mode

    @property
    def model(self) -> str:
        return self.provenance.model

    @property
    def scorer(self) -> str:
        return self.provenance.scorer

    @property
    def n(self) -> int:
        return self.provenance.n

    @property
    def seed(self) -> int:
        return self.provenance.seed

    @property
    def images_per_prompt(self) -> int:
        return self.provenance.images_per_prompt

    def value(self, metric_id: str) -> MetricValue:
        return self.metrics[metric_id].value if metric_id in self.metrics else None

    # a Fairlearn-shaped view (MetricFrame's names; :mod:`~pytest_t2ibias.metrics.groupwise`)
    def by_group(self, attribute: str | None = None) -> Any:
        """Each group's share of the images labelled with ``attribute`` (default: the attribute under test;
        any annotated one, or the joint one of ``intersect``): a ``pandas.Series`` when pandas is installed,
        else a dict."""
        return groupwise.by_group(self, attribute)

    def by_group_ci(self, attribute: str | None = None) -> Any:
        """Each group's share's 95 % interval: a ``pandas.DataFrame`` (``low``, ``high``), else a dict."""
        return groupwise.by_group_ci(self, attribute)

    def difference(self, attribute: str | None = None, method: groupwise.Method = "between_groups") -> float | None:
        """The largest share minus the smallest (``between_groups``), or the largest gap of a share to the
        ``compare_to`` reference's (``to_reference``)."""
        return groupwise.value(self, "difference", attribute, method)

    def difference_ci(
        self, attribute: str | None = None, method: groupwise.Method = "between_groups"
    ) -> tuple[float, float] | None:
        """The 95 % interval of :meth:`difference`."""
        return groupwise.interval(self, "difference", attribute, method)

    def ratio(self, attribute: str | None = None, method: groupwise.Method = "between_groups") -> float | None:
        """The smallest share over the largest (``between_groups``), or the smallest of share / reference and
        reference / share (``to_reference``)."""
        return groupwise.value(self, "ratio", attribute, method)

    def ratio_ci(
        self, attribute: str | None = None, method: groupwise.Method = "between_groups"
    ) -> tuple[float, float] | None:
        """The 95 % interval of :meth:`ratio`."""
        return groupwise.interval(self, "ratio", attribute, method)

    def label_counts(self, attribute: str) -> dict[str, int]:
        return dict(Counter(r.labels.get(attribute, "unknown") for r in self.records))

    def columns(self, suite: Suite) -> CategoryData:
        """The category's data as columns (from the records when the result does not keep them)."""
        if self.data is not None:
            return self.data
        return category_data(suite, self.category, self.records, self.mode)


#: Suite fingerprints by suite object (kept alive with it, so an id is never reused while cached): hashing
#: the whole suite as JSON costs more than measuring a category of 2,000 images.
_FINGERPRINTS: dict[int, tuple[Suite, str]] = {}


def _fingerprint(suite: Suite) -> str:
    cached = _FINGERPRINTS.get(id(suite))
    if cached is not None and cached[0] is suite:
        return cached[1]
    if len(_FINGERPRINTS) >= 16:
        _FINGERPRINTS.clear()
    value = suite.fingerprint()
    _FINGERPRINTS[id(suite)] = (suite, value)
    return value


def measure(
    suite: Suite,
    data: CategoryData,
    *,
    model: str,
    scorer: str,
    records: Sequence[ImageRecord] = (),
    seed: int | None = None,
    images_per_prompt: int | None = None,
    n_boot: int = N_BOOT,
    metrics: Collection[str] | None = None,
    card: ScorerCard | None = None,
) -> CategoryResult:
    """Every metric (or those in ``metrics``) of one category's data, with its interval (seeded by the
    suite's seed by default).

    With a scorer ``card`` that covers the category's attribute, ``metrics`` are corrected for the scorer's
    misclassification (:mod:`~pytest_t2ibias.metrics.corrected`), ``raw_metrics`` keep the uncorrected
    ones, and the scorer id gets ``|card:<images hash>`` (a baseline approved with another card is stale).
    The caller checks that the card is the scorer's (:func:`~pytest_t2ibias.metrics.scorer_card.
    check_card_scorer`).
    """
    seed = suite.seed if seed is None else seed
    wanted = [m for m in reported_metrics(data) if metrics is None or m in metrics]
    views: dict[str, dict[str, str]] = {}  # attribute -> `<metric>@<attribute>` -> metric
    for metric_id in wanted:
        base, _, attribute = metric_id.partition(VIEW)
        if attribute:
            views.setdefault(attribute, {})[metric_id] = base
    raw, corrected, data = estimates(data, [m for m in wanted if VIEW not in m], card, seed, n_boot)
    fixed = dict(corrected or {})  # the card-corrected estimates, of any attribute
    view_cards = {}
    for attribute, ids in views.items():  # each other attribute measured on the category's view of it
        try:
            view = data.view(attribute)
        except MetricUnavailable as why:  # the images carry no labels of it: no value, and why
            raw.update({m: MetricEstimate(None, None, str(why)) for m in ids})
            continue
        view_raw, view_corrected, view = estimates(view, list(ids.values()), card, seed, n_boot)
        if view_corrected is not None:
            corrected = corrected or {}  # some metric was corrected: the result carries the card
            if view.scorer_card is not None:
                view_cards[attribute] = view.scorer_card
        for metric_id, base in ids.items():
            raw[metric_id] = view_raw[base]
            if view_corrected is not None:
                fixed[metric_id] = view_corrected[base]
    if view_cards:
        data = replace(data, view_cards=view_cards)
    order = {m: i for i, m in enumerate(wanted)}
    raw = dict(sorted(raw.items(), key=lambda kv: order.get(kv[0], len(order))))
    if corrected is not None:
        corrected = {m: fixed.get(m, raw[m]) for m in raw}
    provenance = Provenance(
        category=data.name,
        suite=suite.name,
        suite_hash=_fingerprint(suite),  # a frozen model: its fingerprint cannot change
        mode=data.mode,
        model=model,
        # the card changes the numbers: a baseline approved with another card (or none) is stale
        scorer=scorer if corrected is None or card is None else f"{scorer}|card:{card.images_hash}",
        n=data.n,
        seed=seed,
        images_per_prompt=suite.images_per_prompt if images_per_prompt is None else images_per_prompt,
    )
    return CategoryResult(
        provenance=provenance,
        metrics=raw if corrected is None else corrected,
        records=records,
        data=data,
        raw_metrics=None if corrected is None else raw,
        scorer_card=None if corrected is None else card,
    )
