"""A Fairlearn-shaped view of one category's result: each group's share, and the differences and ratios
between groups or to the reference, with 95 % intervals.

Named as Fairlearn's ``MetricFrame`` names them, so a Fairlearn user reads them without a manual: the
"metric" is a group's share of the images (demographic parity, as ``selection_rate`` per group),
``by_group`` the shares, ``difference`` / ``ratio`` with ``method="between_groups"`` (largest minus or over
smallest) or ``method="to_reference"`` (Fairlearn's ``to_overall``, against the category's ``compare_to``
reference: the overall value has no meaning for shares that sum to 1), and ``*_ci`` the 95 % intervals
(Fairlearn's ``by_group_ci`` / ``difference_ci`` / ``ratio_ci`` give one frame per quantile; here one
``(low, high)`` per value). Every number comes from the metric engine (the registry's
``difference_between_groups``, ``ratio_to_reference``, ..., and a share per group): the same intervals,
and the same scorer-card correction, as the gated metrics. With pandas installed ``by_group`` is a
``pandas.Series`` and ``by_group_ci`` a ``pandas.DataFrame`` (columns ``low``, ``high``); without it,
dicts. Used through :class:`~pytest_t2ibias.metrics.result.CategoryResult`'s methods.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.estimates import estimates as measured
from pytest_t2ibias.metrics.intervals import N_BOOT, MetricEstimate

if TYPE_CHECKING:
    from pytest_t2ibias.metrics.scorer_card import ScorerCard


class CategoryResult(Protocol):
    """What the view reads of a :class:`~pytest_t2ibias.metrics.result.CategoryResult`."""

    @property
    def category(self) -> str: ...

    @property
    def seed(self) -> int: ...

    @property
    def data(self) -> CategoryData | None: ...

    @property
    def scorer_card(self) -> ScorerCard | None: ...


#: How a difference or a ratio is taken (Fairlearn's ``method``; ``to_reference`` is its ``to_overall``).
Method = Literal["between_groups", "to_reference"]
METHODS: tuple[Method, ...] = ("between_groups", "to_reference")
#: The prefix of the per-group share ids the view computes (never a suite's id: it has a space).
_GROUP = "share of "


def estimates(result: CategoryResult, attribute: str | None) -> dict[str, MetricEstimate]:
    """The shares of every group of ``attribute`` (default: the attribute under test) and the differences
    and ratios, with intervals, computed once per result and attribute.

    Raises:
        ValueError: the result keeps no data, or the category does not measure ``attribute``.
    """
    data = result.data
    if data is None:
        raise ValueError(f"category {result.category!r}: the result keeps no data to compute groups from")
    spec = data.spec
    name = attribute or spec.attribute
    if name is None or name not in spec.measured_attributes():
        raise ValueError(
            f"category {result.category!r} does not measure attribute {name!r}; measured: {spec.measured_attributes()}"
        )
    key = f"groupwise:{name}"
    cached = data._cache.get(key)
    if isinstance(cached, dict):
        return cached
    view = data.view(name)
    assert view.attribute is not None
    groups = list(view.attribute.groups)
    ids = [_GROUP + g for g in groups] + [f"{kind}_{method}" for method in METHODS for kind in ("difference", "ratio")]
    if view.spec.compare_to is None:  # no reference of this attribute: between groups only
        ids = [m for m in ids if not m.endswith("to_reference")]
    own = view.spec.model_copy(update={"shares": {_GROUP + g: g for g in groups}, "metrics": ids})
    raw, corrected, _ = measured(replace(view, spec=own, _cache={}), ids, result.scorer_card, result.seed, N_BOOT)
    out = corrected or raw
    data._cache[key] = out
    return out


def by_group(result: CategoryResult, attribute: str | None = None) -> Any:
    """Each group's share (of the images with a label of the attribute)."""
    found = estimates(result, attribute)
    shares = {m.removeprefix(_GROUP): e.value for m, e in found.items() if m.startswith(_GROUP)}
    return _series(shares, attribute or _attribute(result))


def by_group_ci(result: CategoryResult, attribute: str | None = None) -> Any:
    """Each group's share's 95 % interval, ``(low, high)``."""
    found = estimates(result, attribute)
    rows = {m.removeprefix(_GROUP): _bounds(e) for m, e in found.items() if m.startswith(_GROUP)}
    pd = _pandas()
    if pd is None:
        return rows
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["low", "high"])
    frame.index.name = attribute or _attribute(result)
    return frame


def value(result: CategoryResult, kind: str, attribute: str | None, method: Method) -> float | None:
    """``difference`` or ``ratio`` by ``method``; None when it has no value (say, no labelled image)."""
    found = estimates(result, attribute)
    return _checked(found, kind, method, result).value  # type: ignore[return-value]


def interval(result: CategoryResult, kind: str, attribute: str | None, method: Method) -> tuple[float, float] | None:
    """The 95 % interval of ``difference`` or ``ratio`` by ``method``."""
    return _bounds(_checked(estimates(result, attribute), kind, method, result))


def _checked(found: dict[str, MetricEstimate], kind: str, method: str, result: CategoryResult) -> MetricEstimate:
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    metric_id = f"{kind}_{method}"
    if metric_id not in found:
        raise ValueError(
            f"category {result.category!r} has no `compare_to` reference of this attribute: "
            f"method='to_reference' needs one"
        )
    return found[metric_id]


def _bounds(estimate: MetricEstimate) -> tuple[float, float] | None:
    iv = estimate.interval
    return None if iv is None else (iv.low, iv.high)


def _attribute(result: CategoryResult) -> str | None:
    return result.data.spec.attribute if result.data is not None else None


def _series(values: dict[str, Any], name: str | None) -> Any:
    pd = _pandas()
    if pd is None:
        return values
    series = pd.Series(values, name="share", dtype="float64")
    series.index.name = name
    return series


def _pandas() -> ModuleType | None:
    """pandas when it is installed (no dependency on it: without it the view returns dicts)."""
    try:
        return importlib.import_module("pandas")
    except ImportError:
        return None
