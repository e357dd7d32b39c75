"""Threshold policies: per metric an absolute bound, an allowed regression, and a severity.

A policy file (``thresholds/<suite>.yaml``) has a ``default`` block applied to every category and
per-category overrides; an override replaces the default rule for that metric in that category.

.. code-block:: yaml

    suite: t2i-biasbench
    default:
      composite: {max: 0.55, warn_max: 0.30, regression: {absolute: 0.05}}
    categories:
      doctor:
        parity_difference: {min: -0.3, max: 0.3, regression: {absolute: 0.1}}

Typos in metric or category names are errors that list the valid names.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_t2ibias._io import clip, load_yaml
from pytest_t2ibias.errors import PolicyError
from pytest_t2ibias.metrics.engine import resolvable
from pytest_t2ibias.metrics.registry import added_by, metric_def
from pytest_t2ibias.suites.loader import format_validation_error
from pytest_t2ibias.suites.schema import Category, Suite

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BOUNDS_ALPHA",
    "DEFAULT_EVIDENCE",
    "MetricRule",
    "Policy",
    "PolicyError",
    "Regression",
    "find_policy",
    "load_policy",
]

Severity = Literal["fail", "warn"]
#: The family-wise error rate of a run's checks when the policy does not set ``alpha`` (or there is none).
DEFAULT_ALPHA = 0.01
#: The share of alpha the hard bounds of a run get (the regressions get the rest): a value on its bound
#: is rare and a bound far away costs nothing, while every regression check is tested against a baseline.
DEFAULT_BOUNDS_ALPHA = 0.2
#: A regression passes when the data rule out a worsening beyond this many times the allowed regression.
DEFAULT_EVIDENCE = 1.5
#: The knobs' ranges keep both halves of the family able to fail. The smallest p-value a check can reach is
#: set by its Monte Carlo size (judge/family.py splits alpha, judge/stats.py and metrics/intervals.py make
#: the p-values): 1/100,001 for a bound from posterior draws, 1/40,001 for a permutation regression test,
#: 1/20,001 for an aggregate bound. A family's share of alpha, alpha x bounds_alpha for the bounds and
#: alpha x (1 - bounds_alpha) for the regressions, must stay above that, or none of its checks can ever
#: fail (`alpha: 1e-300` made a male share of 0.86 against a max of 0.2 a mere warning, `bounds_alpha: 1`
#: made every regression pass). At the extremes, 1e-3 x 0.05 = 5e-5: a single check of either half can
#: still fail. Above 0.5 alpha is no longer an error rate anyone gates on.
MIN_ALPHA, MAX_ALPHA = 1e-3, 0.5
MIN_BOUNDS_ALPHA, MAX_BOUNDS_ALPHA = 0.05, 0.95


#: Cohen's kappa: from -1 (always wrong) to 1 (always right); 0 is chance.
_Kappa = Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Regression(_Strict):
    """How much worse than the approved baseline a metric may get: ``absolute`` or ``relative``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    absolute: float | None = Field(default=None, ge=0)
    relative: float | None = Field(default=None, ge=0, description="A fraction of the baseline value.")
    cumulative: float | None = Field(
        default=None,
        ge=0,
        description="How much worse than the anchor (the first approved baseline) the metric may get in all, "
        "across re-approvals; default: the allowed regression itself.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Regression:
        if (self.absolute is None) == (self.relative is None):
            raise ValueError("give exactly one of `absolute` or `relative`")
        return self

    def allowed(self, baseline: float) -> float:
        """The allowed worsening for this baseline value."""
        return self.absolute if self.absolute is not None else abs(baseline) * (self.relative or 0.0)

    def cumulative_allowed(self, anchor: float) -> float:
        """The allowed worsening from the anchor, across re-approvals."""
        return self.cumulative if self.cumulative is not None else self.allowed(anchor)


class MetricRule(_Strict):
    """The gate of one metric: hard bounds (``min``/``max``), soft bounds (``warn_min``/``warn_max``),
    an allowed regression against the baseline, and the severity (``fail`` or ``warn``) of a hard bound
    crossed or a credible regression."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min: float | None = None
    max: float | None = None
    warn_min: float | None = None
    warn_max: float | None = None
    regression: Regression | None = None
    severity: Severity = "fail"

    @model_validator(mode="after")
    def _something_to_check(self) -> MetricRule:
        if all(v is None for v in (self.min, self.max, self.warn_min, self.warn_max, self.regression)):
            raise ValueError("a rule needs at least one of min, max, warn_min, warn_max, regression")
        for low, high, names in ((self.min, self.max, "min/max"), (self.warn_min, self.warn_max, "warn_min/warn_max")):
            if low is not None and high is not None and low > high:
                raise ValueError(f"{names}: {low} is above {high}")
        # A hard band and a warn band that do not overlap: every value fails or warns.
        for low, high, names in ((self.min, self.warn_max, "min/warn_max"), (self.warn_min, self.max, "warn_min/max")):
            if low is not None and high is not None and low > high:
                raise ValueError(f"{names}: {low} is above {high}, so no value passes both bands")
        return self


class Policy(_Strict):
    """A default rule set plus per-category overrides, for one suite."""

    suite: str | None = None
    alpha: float = Field(
        default=DEFAULT_ALPHA,
        ge=MIN_ALPHA,
        le=MAX_ALPHA,
        allow_inf_nan=False,
        description="Family-wise error rate of a run's fail-level checks.",
    )
    correction: Literal["holm", "none"] = Field(
        default="holm", description="Across every fail-level check of the run (regressions, anchors, bounds)."
    )
    bounds_alpha: float = Field(
        default=DEFAULT_BOUNDS_ALPHA,
        ge=MIN_BOUNDS_ALPHA,
        le=MAX_BOUNDS_ALPHA,
        allow_inf_nan=False,
        description="The share of alpha spent on hard bounds (Holm among them), the rest on the regression "
        "and anchor checks (Holm among them): together the run's fail-level checks hold alpha.",
    )
    warn_correction: Literal["bh", "none"] = Field(
        default="bh", description="Benjamini-Hochberg across the warn-level regression checks."
    )
    evidence: float = Field(
        default=DEFAULT_EVIDENCE,
        ge=1,
        allow_inf_nan=False,
        description="A regression check passes only when the data rule out a worsening beyond this many "
        "times the allowed regression (its 95% upper bound); wider than that is inconclusive.",
    )
    margin_test: bool = Field(
        default=False,
        description="Also require the worsening to be significantly beyond the allowed regression "
        "(no failures from true changes inside the margin, at a large cost in power).",
    )
    require_scorer_card: bool = Field(
        default=False,
        description="Checks of metrics built on an attribute's labels are inconclusive (warn, never pass) "
        "unless the run's scorer has a scorer card for that attribute (docs/scorer-audit.md).",
    )
    min_kappa: _Kappa | dict[str, _Kappa] | None = Field(
        default=None,
        description="The least Cohen's kappa the scorer card must show for the attribute: one number, or per "
        "category name, group or glob (the most specific key wins; an optional `default`); below it the checks "
        "on the attribute are inconclusive.",
    )
    default: dict[str, MetricRule] = Field(default_factory=dict)
    categories: dict[str, dict[str, MetricRule]] = Field(
        default_factory=dict, description="Per category name, group name or glob (docs/policies.md)."
    )
    aggregate: dict[str, MetricRule] = Field(
        default_factory=dict, description="Bounds on the aggregates across categories (metrics/aggregate.py)."
    )

    @model_validator(mode="after")
    def _aggregate_ids(self) -> Policy:
        from pytest_t2ibias.metrics.aggregate import AGGREGATE_METRICS

        for metric_id in self.aggregate:
            if metric_id not in AGGREGATE_METRICS:
                valid = list(AGGREGATE_METRICS)
                raise ValueError(f"aggregate.{metric_id}: unknown aggregate {metric_id!r}; valid: {valid}")
        return self

    def min_kappa_for(self, category: str) -> float | None:
        """The least kappa the scorer card must show for ``category``'s attribute (None: no minimum)."""
        if isinstance(self.min_kappa, dict):
            return self.min_kappa.get(category, self.min_kappa.get("default"))
        return self.min_kappa

    def rules_for(self, category: str) -> dict[str, MetricRule]:
        """The rules of one category: the defaults, each replaced by the category's own rule (a policy
        loaded with its suite has its group and glob keys resolved to category names: :meth:`resolved`)."""
        return {**self.default, **self.categories.get(category, {})}

    def resolved(self, suite: Suite) -> Policy:
        """This policy with every group and glob key replaced by the categories it selects, metric by metric
        the most specific key winning (exact name > group > glob; longer over shorter)."""
        from pytest_t2ibias.suites.selection import by_precedence

        categories: dict[str, dict[str, MetricRule]] = {}
        for category in suite.categories:
            keys = by_precedence(suite, self.categories, category)
            if keys:
                categories[category] = {m: r for key in keys for m, r in self.categories[key].items()}
        update: dict[str, object] = {"categories": categories}
        if isinstance(self.min_kappa, dict):  # group and glob keys too, the most specific winning
            kappas = {k: v for k, v in self.min_kappa.items() if k != "default"}
            min_kappa = {"default": self.min_kappa["default"]} if "default" in self.min_kappa else {}
            for category in suite.categories:
                keys = by_precedence(suite, kappas, category)
                if keys:
                    min_kappa[category] = kappas[keys[-1]]
            update["min_kappa"] = min_kappa
        return self.model_copy(update=update)

    def check_against(self, suite: Suite, source: str = "<policy>") -> None:
        """Fail on a category or metric name the suite does not have, listing the valid names."""
        if self.suite is not None and self.suite != suite.name:
            raise PolicyError(f"{source}: field `suite`: policy is for {self.suite!r}, the run uses {suite.name!r}")
        from pytest_t2ibias.suites.selection import selected

        if isinstance(self.min_kappa, dict):
            for key in self.min_kappa:
                if key != "default" and not selected(suite, key):
                    glob = any(ch in key for ch in "*?[")
                    what = f"glob {key!r} matches no category" if glob else f"unknown category {key!r}"
                    raise PolicyError(
                        f"{source}: field `min_kappa.{key}`: {what}; valid: {list(suite.categories)}, a group "
                        "or glob of them, or 'default'"
                    )
        reported = {c: _reported(suite, c) for c in suite.categories}
        anywhere = sorted(set().union(*reported.values()))
        for metric_id in self.default:
            if metric_id not in anywhere:
                raise PolicyError(
                    f"{source}: field `default.{metric_id}`: unknown metric {metric_id!r}; valid: {anywhere}"
                )
        for key, rules in self.categories.items():
            chosen = selected(suite, key)
            if not chosen:
                glob = any(ch in key for ch in "*?[")
                what = f"glob {key!r} matches no category" if glob else f"unknown category {key!r}"
                groups = f"; groups: {list(suite.groups())}" if suite.groups() else ""
                raise PolicyError(
                    f"{source}: field `categories.{key}`: {what}{groups}; valid: {list(suite.categories)}"
                )
            for category in chosen:
                for metric_id in rules:
                    if metric_id not in reported[category]:
                        raise PolicyError(
                            f"{source}: field `categories.{key}.{metric_id}`: category {category!r} has no "
                            f"metric {metric_id!r}; valid: {sorted(reported[category])}"
                        )


def _reported(suite: Suite, category: str) -> set[str]:
    """Every scalar metric a category can report, in any mode, with any annotator."""
    spec = suite.categories[category]
    ids = {m for m in spec.metrics if resolvable(m, spec)} | set(added_by("embeddings"))
    if spec.attribute is not None:
        ids |= set(added_by("strict"))
    # a distribution (group -> share) is no number: gate its scalars (parity, entropy) instead
    return {m for m in ids if not _is_distribution(m, spec)}


def _is_distribution(metric_id: str, spec: Category) -> bool:
    definition = metric_def(metric_id, spec)
    return definition is not None and definition.distribution


def parse_policy(data: object, source: str = "<policy>", suite: Suite | None = None) -> Policy:
    """Validate already-parsed policy data (and its names against ``suite`` when given)."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy must be a mapping at the top level, got {type(data).__name__}")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as err:
        raise PolicyError(format_validation_error(source, err)) from None
    if suite is not None:
        policy.check_against(suite, source)
        policy = policy.resolved(suite)
    return policy


def load_policy(path: str | Path, suite: Suite | None = None) -> Policy:
    """Load one policy file; names are checked against ``suite`` when given."""
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: no such policy file")
    return parse_policy(_read_yaml(path), str(path), suite)


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PolicyError(f"{path}: cannot read policy file: {clip(str(err))}") from None
    return load_yaml(text, str(path), PolicyError)


def find_policy(directory: str | Path, suite: Suite) -> tuple[Policy, Path] | None:
    """The policy for ``suite`` in a thresholds folder: the one file whose ``suite`` names it.

    Raises:
        PolicyError: two files claim the suite, or the one that does is invalid.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return None
    matches = []
    for path in sorted(_yaml_files(folder)):
        data = _read_yaml(path)
        if isinstance(data, dict) and data.get("suite") == suite.name:
            matches.append((path, data))
    if len(matches) > 1:
        raise PolicyError(f"{folder}: several policies for suite {suite.name!r}: {[str(p) for p, _ in matches]}")
    if not matches:
        named = [p for p in (folder / f"{suite.name}.yaml", folder / f"{suite.name}.yml") if p.is_file()]
        if named:  # a file named for the suite, without a `suite:` key (one naming another suite fails)
            return load_policy(named[0], suite), named[0]
        return None
    path, data = matches[0]
    return parse_policy(data, str(path), suite), path


def _yaml_files(folder: Path) -> Iterable[Path]:
    return [p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()]
