"""The field's measures (FD, MaxSkew / MinSkew, KL to a reference, NDKL) and metrics of other attributes
(``<metric>@<attribute>``, ``intersect``).

Each metric equals a hand computation, the published formula's code (re-typed below from the authors'
repositories, loops and all) and, replicate by replicate, the pure functions of
:mod:`pytest_t2ibias.metrics.discrepancy`. A metric of another attribute equals the same metric of a
category whose attribute under test that is; a joint group nobody was drawn in gets an interval, never a
division by zero; a scorer card for the other attribute corrects its metrics; the occupations suite
measures ethnicity, Hispanic origin and gender x ethnicity in every category.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from pytest_t2ibias.judge.compare import compare_paired, compare_unpaired
from pytest_t2ibias.metrics.counts import multinomial_draws, stats_of, type_table
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.discrepancy import (
    fairness_discrepancy,
    floored,
    kl_to,
    max_skew,
    min_skew,
    ndkl,
)
from pytest_t2ibias.metrics.engine import category_data, compute_data
from pytest_t2ibias.metrics.intervals import bound_p_value
from pytest_t2ibias.metrics.registry import metric_def
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.metrics.scorer_card import build_card
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.loader import parse_suite
from pytest_t2ibias.suites.schema import Suite

GENDER = ["female", "male"]
RACE = ["white", "black", "asian", "other"]


def _group(name: str) -> dict[str, list[str]]:
    return {"terms": [name], "phrases": [f"a photo of a {name} person"]}


def _suite(**category: object) -> Suite:
    spec = {
        "prompts": ["a photo of a doctor"],
        "attribute": "gender",
        "also_annotate": ["ethnicity"],
        "intersect": ["gender", "ethnicity"],
        "shares": {"female_share": "female", "women_of_colour": ["female_x_black", "female_x_asian", "female_x_other"]},
        "references": {
            "labour": {
                "source": "test",
                "gender": {"female": 0.4, "male": 0.6},
                "ethnicity": {"white": 0.7, "black": 0.1, "asian": 0.2, "other": 0.0},
            }
        },
        "compare_to": "labour",
        "metrics": [
            "fd",
            "fd_reference",
            "max_skew",
            "min_skew",
            "kl_reference",
            "fd@ethnicity",
            "fd_reference@ethnicity",
            "kl_reference@ethnicity",
            "max_skew@ethnicity",
            "min_skew@ethnicity",
            "representation_parity@gender_x_ethnicity",
            "women_of_colour@gender_x_ethnicity",
            "fd@gender_x_ethnicity",
            "min_skew@gender_x_ethnicity",
        ],
    }
    spec.update(category)
    return parse_suite(
        {
            "name": "field",
            "attributes": {
                "gender": {"groups": {g: _group(g) for g in GENDER}},
                "ethnicity": {"groups": {g: _group(g) for g in RACE}},
            },
            "categories": {"doctor": spec},
        }
    )


SUITE = _suite()


def _data(gender: list[str], race: list[str], suite: Suite = SUITE, **columns: object) -> CategoryData:
    return CategoryData.from_columns(
        suite, "doctor", "strict", labels=gender, annotations={"ethnicity": race}, **columns
    )  # type: ignore[arg-type]


# -- published formulas, re-typed from the authors' code (loops kept) -------------------------------------


def published_fd(p: list[float], target: list[float]) -> float:
    """Choi et al. (2020) / CLEAM: ``np.linalg.norm(p - target)`` (the L2 norm of the shares' difference)."""
    return float(np.sqrt(sum((a - b) ** 2 for a, b in zip(p, target, strict=True))))


def published_max_skew(labels: list[int], k: int) -> float:
    """debias-vision-lang's ``compute_skew_metrics`` (equality of opportunity), top_n = every image: the
    largest ln(share / (1/k)) over the classes seen, an unseen share taken as 1/top_n."""
    top_n = len(labels)
    counts = Counter(labels)
    best = 0.0
    for label_class in set(labels):
        p_positive = counts[label_class] / top_n
        if p_positive == 0:
            p_positive = 1 / top_n
        best = max(best, math.log(p_positive) - math.log(1 / k))
    return best


def published_ndkl(scores: list[float], labels: list[int], k: int) -> float:
    """debias-vision-lang's ``normalized_discounted_KL`` (equality of opportunity), top_n = every image."""

    def kl(p: np.ndarray, q: np.ndarray) -> float:
        return float(np.sum(np.where(p != 0, p * (np.log(np.where(p != 0, p, 1)) - np.log(q)), 0)))

    desired = np.array([1 / k] * k)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # pandas' nlargest keeps file order on ties
    counts = np.zeros(k)
    total = 0.0
    for index, i in enumerate(order, start=1):
        counts[labels[i]] += 1
        total += kl(counts / index, desired) / math.log2(index + 1)
    z = sum(1 / math.log2(i + 1) for i in range(1, len(scores) + 1))
    return total / z


# -- the metrics -----------------------------------------------------------------------------------------


def test_each_metric_equals_a_hand_computation() -> None:
    """3 women, 7 men; labour 40 % women: every number worked out by hand."""
    data = _data(["female"] * 3 + ["male"] * 7, ["white"] * 10)
    got = compute_data(data).metrics
    assert got["fd"] == pytest.approx(math.sqrt(0.2**2 + 0.2**2))
    assert got["fd_reference"] == pytest.approx(math.sqrt(0.1**2 + 0.1**2))
    assert got["max_skew"] == pytest.approx(math.log(0.7 / 0.5))
    assert got["min_skew"] == pytest.approx(math.log(0.3 / 0.5))
    assert got["kl_reference"] == pytest.approx(0.3 * math.log(0.3 / 0.4) + 0.7 * math.log(0.7 / 0.6))
    # ethnicity: everyone white; the other three groups never drawn (one image each for the skew)
    assert got["fd@ethnicity"] == pytest.approx(math.sqrt(0.75**2 + 3 * 0.25**2))
    assert got["min_skew@ethnicity"] == pytest.approx(math.log(0.1 / 0.25))
    assert got["max_skew@ethnicity"] == pytest.approx(math.log(1 / 0.25))
    # the reference gives `other` 0.0: KL floors it (no image is `other` here, so it does not matter)
    t = floored([0.7, 0.1, 0.2, 0.0])
    assert got["kl_reference@ethnicity"] == pytest.approx(math.log(1 / t[0]))


def test_the_joint_attribute_counts_combinations_and_small_cells_stay_finite() -> None:
    gender = ["female", "female", "male", "male", "male", "female", "unknown"]
    race = ["black", "white", "white", "asian", "white", "unknown", "black"]
    result = measure(SUITE, _data(gender, race), model="m", scorer="s")
    shares = result.metrics["representation_parity@gender_x_ethnicity"].value
    assert isinstance(shares, dict)
    # 5 images have both labels (one lacks race, one gender): female_x_black 1, female_x_white 1,
    # male_x_white 2, male_x_asian 1; the other four cells empty
    assert shares["male_x_white"] == pytest.approx(2 / 5) and shares["female_x_black"] == pytest.approx(1 / 5)
    assert sum(1 for v in shares.values() if v == 0) == 4 and len(shares) == 8
    woc = result.metrics["women_of_colour@gender_x_ethnicity"]
    assert woc.value == pytest.approx(1 / 5)
    for metric_id in ("women_of_colour@gender_x_ethnicity", "fd@gender_x_ethnicity", "min_skew@gender_x_ethnicity"):
        interval = result.metrics[metric_id].interval
        assert interval is not None and math.isfinite(interval.low) and math.isfinite(interval.high), metric_id
        assert interval.low <= result.metrics[metric_id].value <= interval.high  # type: ignore[operator]
    # an empty cell's skew: one image of five (1/5) is more than its target 1/8, so it counts as half that
    assert result.metrics["min_skew@gender_x_ethnicity"].value == pytest.approx(math.log(0.5))


@pytest.mark.parametrize("seed", range(6))
def test_metrics_equal_the_published_code_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    p = rng.dirichlet(np.ones(4) * 0.6)
    race = [RACE[i] for i in rng.choice(4, size=n, p=p)]
    gender = [GENDER[i] for i in rng.integers(0, 2, size=n)]
    scores = np.round(rng.random(n), 2)  # ties on purpose
    data = _data(
        gender, race, suite=_suite(metrics=["fd@ethnicity", "max_skew@ethnicity", "ndkl@ethnicity"]), clip_scores=scores
    )
    got = compute_data(data).metrics
    counts = Counter(race)
    shares = [counts[g] / n for g in RACE]
    assert got["fd@ethnicity"] == pytest.approx(published_fd(shares, [0.25] * 4), abs=1e-12)
    assert got["fd@ethnicity"] == pytest.approx(fairness_discrepancy(shares, [0.25] * 4), abs=1e-12)
    codes = [RACE.index(r) for r in race]
    # the published skew runs over the classes seen, ours over every declared group (an unseen one counted
    # as one image, as there, from n >= 2k on: below, at most half its target share)
    if len(counts) == 4 or n >= 8:
        assert got["max_skew@ethnicity"] == pytest.approx(published_max_skew(codes, 4), abs=1e-12)
    assert got["max_skew@ethnicity"] == pytest.approx(max_skew(np.array(shares), np.full(4, 0.25), n), abs=1e-12)
    assert got["ndkl@ethnicity"] == pytest.approx(published_ndkl(scores.tolist(), codes, 4), abs=1e-12)
    ranked = [race[i] for i in np.argsort(-scores, kind="stable")]
    assert got["ndkl@ethnicity"] == pytest.approx(ndkl(ranked, RACE, np.full(4, 0.25)), abs=1e-12)


def test_every_replicate_equals_the_pure_functions_on_its_counts() -> None:
    """The vectorised count metrics on 200 multinomial replicates equal the pure functions, one by one."""
    rng = np.random.default_rng(3)
    race = [RACE[i] for i in rng.choice(4, size=60, p=[0.6, 0.25, 0.15, 0.0])]
    data = _data(["male"] * 60, race).view("ethnicity")
    table = type_table(data, ("labels",))
    draws = multinomial_draws(table.counts, 200, seed=1, stream="t")
    stats = stats_of(data, table, draws)
    reference = {"white": 0.7, "black": 0.1, "asian": 0.2, "other": 0.0}
    values = {
        m: metric_def(m, data.spec).statistic(stats)
        for m in ("fd", "max_skew", "min_skew", "kl_reference", "fd_reference")
    }  # type: ignore[union-attr]
    names = data.label_codes().names
    for b in range(200):
        counts = dict(zip(names, stats.groups[b], strict=True))
        p = np.array([counts.get(g, 0.0) for g in RACE]) / 60
        assert values["fd"][b] == pytest.approx(fairness_discrepancy(p, np.full(4, 0.25)), abs=1e-12)
        assert values["max_skew"][b] == pytest.approx(max_skew(p, np.full(4, 0.25), 60), abs=1e-12)
        assert values["min_skew"][b] == pytest.approx(min_skew(p, np.full(4, 0.25), 60), abs=1e-12)
        r = np.array(list(reference.values()))
        assert values["kl_reference"][b] == pytest.approx(kl_to(p, r), abs=1e-12)
        assert values["fd_reference"][b] == pytest.approx(fairness_discrepancy(p, r), abs=1e-12)


def test_a_metric_of_another_attribute_is_that_attribute_under_test() -> None:
    """``fd@ethnicity`` with its interval equals ``fd`` of a category whose attribute under test is ethnicity."""
    rng = np.random.default_rng(5)
    race = [RACE[i] for i in rng.choice(4, size=80, p=[0.5, 0.2, 0.2, 0.1])]
    gender = [GENDER[i] for i in rng.integers(0, 2, size=80)]
    ours = measure(SUITE, _data(gender, race), model="m", scorer="s")
    flipped = _suite(attribute="ethnicity", also_annotate=["gender"], intersect=None, shares={},
                     metrics=["fd", "fd_reference", "kl_reference", "max_skew", "min_skew"])  # fmt: skip
    theirs = measure(
        flipped,
        CategoryData.from_columns(flipped, "doctor", "strict", labels=race, annotations={"gender": gender}),
        model="m",
        scorer="s",
    )
    for metric in ("fd", "fd_reference", "kl_reference", "max_skew", "min_skew"):
        assert ours.metrics[f"{metric}@ethnicity"] == theirs.metrics[metric], metric


def test_records_carry_the_other_attributes_and_comparisons_run_on_the_view() -> None:
    def records(race: list[str]) -> list[ImageRecord]:
        return [
            ImageRecord(image_id=str(i), category="doctor", labels={"gender": "male", "ethnicity": r}, seed=i)
            for i, r in enumerate(race)
        ]

    base = category_data(SUITE, "doctor", records(["white", "black", "asian", "other"] * 25), "strict")
    cand = category_data(SUITE, "doctor", records(["white"] * 85 + ["black", "asian", "other"] * 5), "strict")
    worse = compute_data(cand).metrics["fd@ethnicity"] - compute_data(base).metrics["fd@ethnicity"]  # type: ignore[operator]
    paired = compare_paired(base, cand, "fd@ethnicity", worse)
    unpaired = compare_unpaired(base, cand, "fd@ethnicity", worse)
    assert paired.metric == unpaired.metric == "fd@ethnicity"
    assert paired.p_value < 0.001 and unpaired.p_value < 0.001  # 25 % white -> 85 % white
    assert compare_paired(base, base, "fd@ethnicity", 0.0).p_value > 0.5
    # a bound on it is tested on the view too
    assert bound_p_value(cand, "fd@ethnicity", 0.2, "max") < 0.001
    assert bound_p_value(base, "fd@ethnicity", 0.2, "max") == 1.0


def test_a_scorer_card_for_the_other_attribute_corrects_its_metrics() -> None:
    """The scorer reads 20 % of black people as white: with the card, the corrected share of white
    people moves back toward the truth and the result keeps the raw one apart."""
    truth = ["white"] * 100 + ["black"] * 100 + ["asian"] * 40 + ["other"] * 40
    audit = ["white"] * 100 + ["white"] * 20 + ["black"] * 80 + ["asian"] * 40 + ["other"] * 40
    audit_g = (["female"] * 50 + ["male"] * 50, ["female"] * 50 + ["male"] * 50)
    card = build_card(
        "s", "0" * 16, {"ethnicity": (truth, audit), "gender": audit_g}, classes={"ethnicity": RACE, "gender": GENDER}
    )
    read = ["white"] * 60 + ["black"] * 40  # 50 / 50 in truth
    suite = _suite(metrics=["fd", "fd@ethnicity"])
    data = _data(["female"] * 100, read, suite=suite)
    result = measure(suite, data, model="m", scorer="s", card=card)
    assert result.raw_metrics is not None
    raw, fixed = result.raw_metrics["fd@ethnicity"].value, result.metrics["fd@ethnicity"].value
    assert raw == pytest.approx(fairness_discrepancy([0.6, 0.4, 0, 0], [0.25] * 4))
    assert fixed == pytest.approx(fairness_discrepancy([0.5, 0.5, 0, 0], [0.25] * 4), abs=0.02)
    assert result.metrics["fd@ethnicity"].interval.method.startswith("misclassification")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": ["fd@latino"]}, "'fd@latino' measures attribute 'latino', which this category does not annotate"),
        ({"intersect": ["gender", "latino"]}, "'latino' is not annotated in this category"),
        ({"metrics": ["parity_difference@ethnicity"]}, "needs a `parity` split (measured on attribute 'ethnicity'"),
        ({"metrics": ["fd_reference@gender_x_ethnicity"]}, "needs a `compare_to` reference (measured on attribute"),
        (
            {"shares": {"w": ["female_x_purple"]}, "metrics": ["w@gender_x_ethnicity"]},
            "'female_x_purple' is not a group",
        ),
    ],
)
def test_bad_declarations_get_one_line_naming_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(Exception, match=r"categories\.doctor") as caught:
        _suite(**change)
    assert message in str(caught.value)


def test_the_occupations_suite_measures_ethnicity_origin_and_the_intersection_everywhere() -> None:
    suite = load_suite("occupations")
    for name, spec in suite.categories.items():
        wanted = {
            "fd@ethnicity",
            "fd_reference@ethnicity",
            "kl_reference@ethnicity",
            "max_skew@ethnicity",
            "latino_share@latino",
            "fd@gender_x_ethnicity",
            "women_of_colour_share@gender_x_ethnicity",
        }
        assert wanted <= set(spec.metrics), name
        view = spec.view("ethnicity")
        assert view.compare_to == "labour"
        ref = spec.references["labour"].of("ethnicity", list(suite.attributes["ethnicity"].groups))
        assert abs(sum(ref.values()) - 1) < 1e-9  # race shares plus the rest as `other`, Hispanic origin apart
        assert "latino" not in ref


# -- the Fairlearn-shaped view --------------------------------------------------------------------------


def _result() -> object:
    rng = np.random.default_rng(0)
    race = [RACE[i] for i in rng.choice(4, size=200, p=[0.5, 0.2, 0.2, 0.1])]
    gender = [GENDER[i] for i in rng.integers(0, 2, size=200)]
    return measure(SUITE, _data(gender, race), model="m", scorer="s"), gender, race


def test_the_fairlearn_view_equals_the_counts_and_its_intervals_hold_the_values() -> None:
    result, gender, race = _result()
    shares = {g: race.count(g) / 200 for g in RACE}
    assert dict(result.by_group("ethnicity")) == pytest.approx(shares)  # type: ignore[attr-defined]
    assert result.difference("ethnicity") == pytest.approx(max(shares.values()) - min(shares.values()))  # type: ignore[attr-defined]
    assert result.ratio("ethnicity") == pytest.approx(min(shares.values()) / max(shares.values()))  # type: ignore[attr-defined]
    labour = {"white": 0.7, "black": 0.1, "asian": 0.2, "other": 0.0}
    gaps = [abs(shares[g] - labour[g]) for g in RACE]
    assert result.difference("ethnicity", method="to_reference") == pytest.approx(max(gaps))  # type: ignore[attr-defined]
    female = gender.count("female") / 200
    assert result.ratio(method="to_reference") == pytest.approx(  # type: ignore[attr-defined]
        min(female / 0.4, 0.4 / female, (1 - female) / 0.6, 0.6 / (1 - female))
    )
    for method in ("between_groups", "to_reference"):
        low, high = result.difference_ci("ethnicity", method=method)  # type: ignore[attr-defined]
        assert low <= result.difference("ethnicity", method=method) <= high  # type: ignore[attr-defined]
    ci = result.by_group_ci("gender_x_ethnicity")  # type: ignore[attr-defined]
    joint = dict(result.by_group("gender_x_ethnicity"))  # type: ignore[attr-defined]
    assert len(joint) == 8
    for group, share in joint.items():
        low, high = (ci.loc[group, "low"], ci.loc[group, "high"]) if hasattr(ci, "loc") else ci[group]
        assert low <= share <= high, group


def test_the_view_returns_plain_dicts_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    result, _, _ = _result()
    with_pandas = dict(result.by_group())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    fresh, _, _ = _result()
    assert fresh.by_group() == with_pandas  # type: ignore[attr-defined]
    assert isinstance(fresh.by_group_ci(), dict)  # type: ignore[attr-defined]


def test_the_view_says_what_it_cannot_do() -> None:
    result, _, _ = _result()
    with pytest.raises(ValueError, match="method must be one of"):
        result.difference(method="to_overall")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no `compare_to` reference of this attribute"):
        result.ratio("gender_x_ethnicity", method="to_reference")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="does not measure attribute 'latino'"):
        result.by_group("latino")  # type: ignore[attr-defined]
