"""Occupations against US labour statistics: the built-in `occupations` suite gated by
thresholds/occupations.yaml (no occupation drawn with a stronger gender skew than the US labour force
has, with evidence; nor on average across the occupations).

The suite has 71 occupations x 4 prompts, so a real run is long: `test_model_against_labour_statistics`
runs only when T2IBIAS_OCCUPATIONS=1 is set (on the GPU runner, say), with the model, scorer and images
per prompt of pytest.ini (the tiny model at 32 images per prompt: ~75 minutes on two CPU cores).
Set T2IBIAS_OCCUPATIONS=nurse,electrician to run a few occupations only.

The cheap tests always run: they check the gate itself on the synthetic model (exact, known shares,
no pixels), so a policy edit that would pass an amplifying model, or fail one that draws the labour
force as it is, is caught here. A third shows an intersectional regression: fewer women of colour drawn
as nurses, caught by the paired test of the joint share.

The gate: one bound p-value per occupation (`amplification_reference` above its `max`) and one for the
aggregate (`mean_amplification`), all corrected together (Holm at the policy's alpha); see
docs/statistics.md, "Many categories".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
from pytest_t2ibias.generate.factory import load_generator
from pytest_t2ibias.generate.stage import plan_requests
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.judge.baseline import BaselineRecord
from pytest_t2ibias.judge.compare import compare_metric
from pytest_t2ibias.judge.family import TestChecks, build_family, gather_aggregates
from pytest_t2ibias.judge.policy import Policy, load_policy
from pytest_t2ibias.judge.verdicts import bound_key, judge_estimates
from pytest_t2ibias.metrics import aggregate
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.intervals import bound_p_value
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.pipeline import evaluate_suite
from pytest_t2ibias.settings import Settings
from pytest_t2ibias.suites import Suite, load_suite

HERE = Path(__file__).parent
RUN = os.environ.get("T2IBIAS_OCCUPATIONS", "")


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("occupations")


@pytest.fixture(scope="module")
def policy(suite: Suite) -> Policy:
    return load_policy(HERE / "thresholds" / "occupations.yaml", suite)


def gate(suite: Suite, policy: Policy, results: dict[str, CategoryResult]) -> tuple[list[str], list[str]]:
    """(what failed, what warned): every hard bound of every occupation and of the aggregates in one
    family (Holm at the policy's alpha); soft bounds and aggregates whose interval straddles warn."""
    tests: dict[str, TestChecks] = {}
    warned: list[str] = []
    for name, result in results.items():
        bounds: dict[str, float] = {}
        for metric_id, rule in policy.rules_for(name).items():
            value = result.value(metric_id)
            if not isinstance(value, float):
                warned.append(f"{name}: {metric_id} has no value")
                continue
            if rule.warn_max is not None and value > rule.warn_max:
                warned.append(f"{name}: {metric_id} = {value:.3f} above {rule.warn_max}")
            if rule.max is not None:
                bounds[bound_key(metric_id, "max")] = bound_p_value(result.columns(suite), metric_id, rule.max, "max")
        tests[name] = TestChecks(bounds=bounds, severities=dict.fromkeys(bounds, "fail"))
    found = aggregate.aggregate(suite, results, seed=suite.seed)
    tests["aggregate"] = gather_aggregates(found, policy.aggregate)  # what the t2ibias_aggregate fixture does
    family = build_family(tests, policy)
    failed = [
        f"{t}: {k} (adjusted p {p:.2g})" for t, f in family.items() for k, p in f.adjusted.items() if p < policy.alpha
    ]
    judged = judge_estimates("aggregate", found.metrics, policy.aggregate, family["aggregate"].adjusted, policy.alpha)
    warned += [f"aggregate: {c.metric} {c.threshold}: {c.note}" for c in judged if c.verdict == "warn"]
    return failed, warned


def _synthetic(
    suite: Suite,
    shift: dict[str, float] | None = None,
    ethnicity: dict[str, dict[str, float]] | None = None,
    only: list[str] | None = None,
) -> dict[str, CategoryResult]:
    """The synthetic model's results at 50 images per prompt, measured from its known labels (no pixels:
    the same numbers as painting each image and reading it back, in a fifth of the time). Gender and
    ethnicity are drawn at the labour shares (independently: the synthetic model draws each attribute on
    its own), but for the occupations in ``shift`` (share of women) and ``ethnicity`` (race shares)."""
    shares = {name: dict(suite.reference_of(name) or {}) for name in suite.categories}
    for name, female in (shift or {}).items():
        shares[name] = {"female": female, "male": round(1 - female, 10)}
    generator = SyntheticGenerator.from_probabilities(suite, shares)
    race = list(suite.attributes["ethnicity"].groups)
    for name, spec in suite.categories.items():
        drawn = (ethnicity or {}).get(name) or spec.references["labour"].of("ethnicity", race)
        generator = generator.with_probabilities(name, drawn, attribute="ethnicity")
    scorer = SyntheticAnnotator(suite).scorer_id
    requests = plan_requests(suite, 50)
    results = {}
    for name, spec in suite.categories.items():
        if only is not None and name not in only:
            continue
        seeds = [r.seed for r in requests if r.category == name]
        truth = generator.columns(name, generator.uniforms(name, seeds))
        labels = truth.labels[spec.attribute] if spec.attribute else None
        others = {a: truth.labels[a] for a in spec.also_annotate}
        data = CategoryData.from_columns(
            suite, name, "strict", labels=labels, present=truth.present, seeds=seeds, annotations=others
        )
        results[name] = measure(suite, data, model=generator.fingerprint, scorer=scorer, images_per_prompt=50)
    return results


def test_gate_passes_a_model_that_draws_the_labour_force(suite: Suite, policy: Policy) -> None:
    """200 images per occupation at the BLS shares of women: nothing fails."""
    failed, _ = gate(suite, policy, _synthetic(suite))
    assert failed == []


def test_gate_fails_a_model_that_amplifies_one_occupation(suite: Suite, policy: Policy) -> None:
    """Nurses drawn 99% women (88% of US registered nurses are): the nurse bound fails, alone."""
    failed, _ = gate(suite, policy, _synthetic(suite, {"nurse": 0.99}))
    assert [line.split(":")[0] for line in failed] == ["nurse"]


WOMEN_OF_COLOUR = "women_of_colour_share@gender_x_ethnicity"


def test_gate_fails_fewer_women_of_colour_among_nurses(suite: Suite) -> None:
    """The approved model draws nurses at the labour shares of women (88 %) and of race (74 % white); the
    candidate draws nurses 92 % white. The share of women of colour among the nurses falls from about 23 %
    to about 7 %, and the paired regression test of `women_of_colour_share@gender_x_ethnicity` (the share
    of the joint groups female x black / asian / other: `intersect: [gender, ethnicity]`) fails; the same
    model re-run passes."""
    approved = BaselineRecord.from_result(_synthetic(suite, only=["nurse"])["nurse"])
    whiter = {"white": 0.92, "black": 0.04, "asian": 0.03, "other": 0.01}
    candidate = _synthetic(suite, ethnicity={"nurse": whiter}, only=["nurse"])["nurse"]
    rerun = _synthetic(suite, only=["nurse"])["nurse"]
    drop = candidate.value(WOMEN_OF_COLOUR) - approved.metrics[WOMEN_OF_COLOUR].value  # type: ignore[operator]
    assert drop < -0.10
    assert compare_metric(suite, candidate, approved, WOMEN_OF_COLOUR).p_value < 0.001
    assert compare_metric(suite, rerun, approved, WOMEN_OF_COLOUR).p_value == 1.0
    # the Fairlearn-shaped view of the same result names the group that fell
    fell = dict(candidate.by_group("gender_x_ethnicity"))
    assert fell["female_x_white"] > 0.75 and fell["female_x_black"] < 0.06


@pytest.mark.skipif(not RUN, reason="long: set T2IBIAS_OCCUPATIONS=1 (or a comma-separated list of occupations)")
def test_model_against_labour_statistics(suite: Suite, policy: Policy, t2ibias_settings: Settings) -> None:
    """The configured model (pytest.ini) on the occupations: no credible amplification of the labour skew."""
    model, scorer = t2ibias_settings.model, t2ibias_settings.scorer
    per_prompt = t2ibias_settings.images_per_prompt
    categories = None if RUN == "1" else RUN.split(",")
    evaluation = evaluate_suite(
        suite,
        load_generator(model, suite),
        load_annotator(scorer, suite),
        images_per_prompt=per_prompt,
        categories=categories,
    )
    failed, warned = gate(suite, policy, evaluation.categories)
    for line in warned:
        print(f"warning: {line}")
    assert not failed, "amplifies the US labour force's gender skew: " + "; ".join(failed)
