"""The misclassification correction and the scorer card (issue 14, item 1), and their use in measurement
and judging (items 4 and 5).

The correction is checked against closed forms (Rogan-Gladen for two classes, the exact inversion of a
3x3 matrix) and a brute-force likelihood maximum on the boundary; kappa against scikit-learn; the
bootstrap interval by its coverage in a seeded simulation. Cards are written into ``tmp_path``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_t2ibias.errors import ScorerCardError, StaleScorerCardError
from pytest_t2ibias.judge.policy import MetricRule, PolicyError, parse_policy
from pytest_t2ibias.judge.verdicts import inconclusive_for_scorer, judge_bounds, scorer_problem
from pytest_t2ibias.metrics.corrected import CORRECTED_METHOD, CORRECTED_SHARE_METHOD, corrected_estimates
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import compute_data
from pytest_t2ibias.metrics.intervals import with_intervals
from pytest_t2ibias.metrics.misclassification import (
    cohens_kappa,
    confusion_matrix,
    correct_counts,
    correction_draws,
    misclassification_matrix,
    percentile_interval,
    project_to_simplex,
    rogan_gladen,
)
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.metrics.scorer_card import (
    ScorerCard,
    build_card,
    card_summary,
    check_card_scorer,
    load_card,
    write_card,
)
from pytest_t2ibias.results import RunResult
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
#: rows true (female, male), columns predicted: 10% of women read male, 2% of men read female
GENDER_M = np.array([[0.90, 0.10], [0.02, 0.98]])


def _noisy(true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(len(true))
    return np.where(true == "female", np.where(u < 0.10, "male", "female"), np.where(u < 0.02, "female", "male"))


def _card(rng: np.random.Generator, n: int = 300, scorer: str = "noisy") -> ScorerCard:
    true = np.array(["female"] * (n // 2) + ["male"] * (n - n // 2))
    return build_card(
        scorer, "h" * 16, {"gender": (list(true), list(_noisy(true, rng)))}, classes={"gender": ["female", "male"]}
    )


# -- the correction ------------------------------------------------------------------------------------


def test_correct_counts_inverts_expected_counts_exactly() -> None:
    m = np.array([[0.8, 0.15, 0.05], [0.1, 0.85, 0.05], [0.05, 0.05, 0.9]])
    truth = np.array([0.2, 0.5, 0.3])
    observed = 1000 * truth @ m
    assert np.allclose(correct_counts(observed, m)[0], truth, atol=1e-9)


@pytest.mark.parametrize("q", [0.15, 0.3, 0.54, 0.7, 0.97])
def test_two_classes_inside_the_simplex_is_rogan_gladen(q: float) -> None:
    observed = np.array([1 - q, q]) * 500  # (female, male) predicted
    male = correct_counts(observed, GENDER_M)[0, 1]
    # sensitivity of "male" 0.98, specificity 0.90
    assert male == pytest.approx(float(rogan_gladen(q, 0.98, 0.90)), abs=1e-9)


@pytest.mark.parametrize("male_count", [0, 3, 9])
def test_below_the_false_positive_floor_is_the_constrained_maximum_likelihood(male_count: int) -> None:
    # 10% of women read male: fewer than 10% "male" puts the inversion below 0; the answer is the simplex
    # point of largest likelihood, which a grid over the male share finds independently
    observed = np.array([100 - male_count, male_count], dtype=float)
    got = correct_counts(observed, GENDER_M)[0]
    grid = np.linspace(0, 1, 100_001)
    q_male = (1 - grid) * GENDER_M[0, 1] + grid * GENDER_M[1, 1]
    loglik = observed[0] * np.log(1 - q_male) + observed[1] * np.log(q_male)
    assert got.sum() == pytest.approx(1.0)
    assert (got >= 0).all()
    assert got[1] == pytest.approx(grid[np.argmax(loglik)], abs=1e-4)


def test_a_card_without_true_unknowns_spreads_predicted_unknowns_over_the_groups() -> None:
    # the scorer says "unknown" for 5% of each group; people never did: a (2 x 3) matrix, solved by EM
    m = np.array([[0.85, 0.10, 0.05], [0.02, 0.93, 0.05]])
    truth = np.array([0.3, 0.7])
    got = correct_counts(1000 * truth @ m, m)[0]
    assert np.allclose(got, truth, atol=1e-6)


def test_a_sample_without_counts_is_nan_not_an_error() -> None:
    got = correct_counts(np.array([[0.0, 0.0], [30.0, 70.0]]), GENDER_M)
    assert np.isnan(got[0]).all()
    assert np.isfinite(got[1]).all()


def test_project_to_simplex_is_the_nearest_point() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2))
    projected = project_to_simplex(points)
    grid = np.linspace(0, 1, 20_001)
    for p, got in zip(points, projected, strict=True):
        d = (grid - p[0]) ** 2 + (1 - grid - p[1]) ** 2
        assert got[0] == pytest.approx(grid[np.argmin(d)], abs=1e-4)
    assert np.allclose(projected.sum(axis=1), 1)


def test_rogan_gladen_clips_and_refuses_a_useless_scorer() -> None:
    assert float(rogan_gladen(0.05, 0.9, 0.9)) == 0.0  # below the false-positive rate
    assert float(rogan_gladen(0.5, 0.9, 0.9)) == pytest.approx(0.5)
    assert float(rogan_gladen(0.32, 0.9, 0.9)) == pytest.approx(0.275)
    assert np.isnan(rogan_gladen(0.5, 0.5, 0.5))  # se + sp = 1: the reading tells nothing


def test_kappa_matches_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    true = rng.choice(["a", "b", "c"], size=400, p=[0.5, 0.3, 0.2])
    pred = np.where(rng.random(400) < 0.8, true, rng.choice(["a", "b", "c"], size=400))
    c = confusion_matrix(list(true), list(pred), ["a", "b", "c"])
    assert float(cohens_kappa(c)) == pytest.approx(sklearn_metrics.cohen_kappa_score(true, pred), abs=1e-12)


def test_confusion_matrix_rejects_unknown_labels() -> None:
    with pytest.raises(ValueError, match=r"labels \['x'\] are not among `classes`"):
        confusion_matrix(["a", "x"], ["a", "a"], ["a", "b"])


def test_misclassification_matrix_leaves_out_classes_no_image_had() -> None:
    rows, m = misclassification_matrix([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    assert rows.tolist() == [0, 1]
    assert m.tolist() == [[0.8, 0.2, 0.0], [0.1, 0.9, 0.0]]


def test_bootstrap_interval_covers_the_true_share() -> None:
    """Run and card both resampled: the 95% percentile interval covers the true male share in >= 90% of
    200 seeded simulated runs (n = 200 images, a 300-image audit); with the card's uncertainty left out
    (run resampled, card fixed at its estimate) the interval is narrower."""
    rng = np.random.default_rng(11)
    covered, widths, widths_fixed = 0, [], []
    for rep in range(200):
        card = _card(rng)
        true = np.where(rng.random(200) < 0.5, "male", "female")
        pred = _noisy(true, rng)
        observed = np.array([(pred == "female").sum(), (pred == "male").sum()], dtype=float)
        confusion = card.attributes["gender"].matrix()
        draws = correction_draws(observed, confusion, 1000, seed=rep)[:, 1]
        low, high = percentile_interval(draws)
        covered += low <= 0.5 <= high
        widths.append(high - low)
        fixed = correction_draws(observed, np.round(misclassification_matrix(confusion)[1] * 1e6), 1000, seed=rep)
        lo2, hi2 = percentile_interval(fixed[:, 1])
        widths_fixed.append(hi2 - lo2)
    assert covered / 200 >= 0.90
    assert np.mean(widths) > np.mean(widths_fixed)


# -- the card ------------------------------------------------------------------------------------------


def test_card_rates_and_summary() -> None:
    card = build_card(
        "s",
        "0" * 16,
        {"gender": (["female"] * 50 + ["male"] * 50, ["female"] * 45 + ["male"] * 5 + ["male"] * 49 + ["female"])},
        {"doctor": ([True, True, False, False], [True, False, True, False])},
        classes={"gender": ["female", "male"]},
    )
    gender = card.attributes["gender"]
    assert gender.confusion == [[45, 5], [1, 49]]
    assert gender.sensitivity["female"].value == pytest.approx(0.9)
    assert gender.specificity["female"].value == pytest.approx(0.98)
    assert gender.sensitivity["female"].low < 0.9 < gender.sensitivity["female"].high
    assert gender.kappa.value == pytest.approx(0.88)
    assert gender.kappa.low < 0.88 < gender.kappa.high
    term = card.terms["doctor"]
    assert (term.true_positive, term.false_positive, term.false_negative, term.true_negative) == (1, 1, 1, 1)
    assert term.precision.value == 0.5 and term.recall.value == 0.5
    text = "\n".join(card_summary(card))
    assert "kappa 0.880" in text and "sensitivity 0.900" in text and "precision 0.500" in text


def test_labels_outside_the_declared_groups_get_their_own_class() -> None:
    card = build_card(
        "s", "h", {"gender": (["male", "female"], ["unknown", "female"])}, classes={"gender": ["female", "male"]}
    )
    assert card.attributes["gender"].classes == ["female", "male", "unknown"]
    assert card.attributes["gender"].confusion == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]


def test_card_round_trip(tmp_path: Path) -> None:
    card = _card(np.random.default_rng(0))
    path = tmp_path / "card.json"
    write_card(path, card)
    assert load_card(path) == card
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: no temp file left


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["attributes"]["gender"].update(confusion=[[1, 2]]), r"field `attributes.gender`: .*2x2"),
        (lambda d: d.pop("scorer"), r"field `scorer`: Field required"),
        (lambda d: d["attributes"]["gender"]["kappa"].update(value="high"), r"field `attributes.gender.kappa.value`"),
        (lambda d: d.update(format=7), r"field `format`: unsupported version 7"),
    ],
)
def test_a_corrupt_card_names_file_and_field(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(_card(np.random.default_rng(0)).model_dump_json())
    mutate(data)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScorerCardError, match=rf"scorer card {path}: {message}"):
        load_card(path)


def test_a_card_that_is_not_json_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text("{not json")
    with pytest.raises(ScorerCardError, match=r"card.json: not JSON \(line 1"):
        load_card(path)
    with pytest.raises(ScorerCardError, match="cannot read it"):
        load_card(tmp_path / "missing.json")


def test_a_card_for_another_scorer_is_stale() -> None:
    card = _card(np.random.default_rng(0), scorer="synthetic-mark-reader:v1+confusion:abc")
    check_card_scorer(card, "synthetic-mark-reader:v1+confusion:abc")
    with pytest.raises(
        StaleScorerCardError, match=r"stale: recorded for scorer .*confusion:abc.*run's scorer is 'other'"
    ):
        check_card_scorer(card, "other")


# -- measurement with a card ---------------------------------------------------------------------------


def _doctor_data(n: int, seed: int, male: float = 0.5) -> CategoryData:
    rng = np.random.default_rng(seed)
    true = np.where(rng.random(n) < male, "male", "female")
    return CategoryData.from_columns(SUITE, "doctor", "strict", labels=list(_noisy(true, rng)))


def test_corrected_metrics_remove_the_scorer_bias() -> None:
    card = _card(np.random.default_rng(5), n=20_000)  # a large audit: the correction is nearly exact
    data = _doctor_data(20_000, seed=6)
    raw = with_intervals(data, compute_data(data), seed=0, n_boot=200)
    corrected = corrected_estimates(data, raw, card, seed=0, n_boot=200)
    assert corrected is not None
    # raw: 0.5 * 0.98 + 0.5 * 0.10 = 0.54 male; corrected: 0.5
    assert raw["male_share"].value == pytest.approx(0.54, abs=0.01)
    assert corrected["male_share"].value == pytest.approx(0.5, abs=0.012)
    assert abs(corrected["parity_difference"].value) < abs(raw["parity_difference"].value)  # type: ignore[arg-type]
    interval = corrected["male_share"].interval
    assert interval is not None and interval.method == CORRECTED_SHARE_METHOD and interval.contains(0.5)
    parity = corrected["parity_difference"].interval
    assert parity is not None and parity.method == CORRECTED_METHOD
    # metrics that do not read the labels are untouched
    assert corrected["gmr"] == raw["gmr"] and corrected["hallucination"] == raw["hallucination"]


def test_a_card_without_a_declared_group_cannot_correct() -> None:
    card = build_card("s", "h", {"gender": (["male"] * 10, ["male"] * 10)}, classes={"gender": ["female", "male"]})
    data = _doctor_data(100, seed=1)
    raw = with_intervals(data, compute_data(data), seed=0, n_boot=50)
    with pytest.raises(ScorerCardError, match=r"field `attributes.gender`: no audit image is truly 'female'"):
        corrected_estimates(data, raw, card)


def test_a_card_for_another_attribute_changes_nothing() -> None:
    card = build_card("s", "h", {"ethnicity": (["white"] * 4, ["white"] * 4)})
    data = _doctor_data(100, seed=1)
    result = measure(SUITE, data, model="m", scorer="s", n_boot=50, card=card)
    assert result.raw_metrics is None and result.scorer_card is None


def test_measure_keeps_raw_beside_corrected_in_the_json() -> None:
    card = _card(np.random.default_rng(2))
    result = measure(SUITE, _doctor_data(300, seed=3), model="m", scorer="noisy", n_boot=100, card=card)
    assert result.raw_metrics is not None
    run = json.loads(RunResult.from_results([result]).to_json())
    entry = run["categories"]["doctor"]
    assert entry["raw_metrics"]["male_share"] == pytest.approx(result.raw_metrics["male_share"].value)
    assert entry["metrics"]["male_share"] != entry["raw_metrics"]["male_share"]
    assert entry["intervals"]["male_share"]["method"] == CORRECTED_SHARE_METHOD
    assert entry["raw_intervals"]["male_share"]["method"] == "exact"
    assert entry["scorer_card"]["scorer"] == "noisy"


# -- judging with a card -------------------------------------------------------------------------------


def test_policy_reads_scorer_requirements() -> None:
    policy = parse_policy({"require_scorer_card": True, "min_kappa": {"default": 0.6, "doctor": 0.8}})
    assert policy.require_scorer_card and policy.min_kappa_for("doctor") == 0.8
    assert policy.min_kappa_for("beauty") == 0.6
    assert parse_policy({"min_kappa": 0.5}).min_kappa_for("doctor") == 0.5
    with pytest.raises(PolicyError, match=r"field `min_kappa.docter`: unknown category 'docter'"):
        parse_policy({"min_kappa": {"docter": 0.5}}, suite=SUITE)


def test_scorer_problem_without_card_and_below_kappa() -> None:
    data = _doctor_data(200, seed=4)
    bare = measure(SUITE, data, model="m", scorer="noisy", n_boot=50)
    assert "no scorer card for attribute 'gender'" in (scorer_problem(bare, True, None) or "")
    assert scorer_problem(bare, False, 0.6) is None  # a minimum kappa alone does not require a card
    carded = measure(SUITE, data, model="m", scorer="noisy", n_boot=50, card=_card(np.random.default_rng(1)))
    kappa = carded.scorer_card.attributes["gender"].kappa.value  # type: ignore[union-attr]
    assert scorer_problem(carded, True, kappa - 0.01) is None
    assert "below the policy's min_kappa" in (scorer_problem(carded, True, kappa + 0.01) or "")


def test_an_untrusted_scorer_makes_label_checks_inconclusive_never_pass() -> None:
    result = measure(SUITE, _doctor_data(400, seed=8), model="m", scorer="noisy", n_boot=100)
    rules = {"male_share": MetricRule(min=0.0, max=1.0), "gmr": MetricRule(max=1.0)}
    checks = judge_bounds(result, rules)
    assert {c.metric: c.verdict for c in checks} == {"male_share": "pass", "gmr": "pass"}
    gated = inconclusive_for_scorer(checks, result, "no scorer card")
    verdicts = {(c.metric, c.threshold): c for c in gated}
    assert all(
        c.verdict == "warn" and "inconclusive: no scorer card" in c.note for c in gated if c.metric == "male_share"
    )
    assert all(c.verdict == "pass" for c in gated if c.metric == "gmr")  # presence does not read the labels
    assert len(verdicts) == len(checks)
    assert inconclusive_for_scorer(checks, result, None) == checks


def test_bounds_are_tested_on_the_corrected_scale() -> None:
    """With a card, a bound's p-value (what the run's family corrects) is about the corrected value: the
    scorer's +4 points do not make a model at 50% look beyond a max of 0.52, and a corrected value well
    beyond a bound still gives the small p-value a family-wise correction needs."""
    from pytest_t2ibias.metrics.intervals import bound_p_value

    card = _card(np.random.default_rng(5), n=3000)
    data = _doctor_data(3000, seed=9)
    result = measure(SUITE, data, model="m", scorer="noisy", n_boot=200, card=card)
    assert result.data is not None and result.data.scorer_card is not None
    raw = result.raw_metrics["male_share"].value  # type: ignore[index]
    corrected = result.metrics["male_share"].value
    assert isinstance(raw, float) and isinstance(corrected, float) and raw > 0.52 > corrected
    assert bound_p_value(data, "male_share", 0.52, "max") < 0.05  # raw labels: "beyond"
    assert bound_p_value(result.data, "male_share", 0.52, "max") == 1.0  # corrected: within
    far, near = (bound_p_value(result.data, "male_share", b, "max") for b in (0.40, corrected - 0.01))
    assert far < 1e-6 < near < 1.0
    assert bound_p_value(result.data, "gmr", 0.5, "max") == bound_p_value(data, "gmr", 0.5, "max")  # not corrected
    # judged with the family's adjusted p-value, as the plugin does
    checks = judge_bounds(result, {"male_share": MetricRule(max=0.40)}, {"bound:male_share:max": far})
    assert [c.verdict for c in checks] == ["fail"]


@pytest.mark.parametrize(
    "name",
    [
        "pytest_t2ibias.metrics.misclassification",
        "pytest_t2ibias.metrics.scorer_card",
        "pytest_t2ibias.annotate.synthetic",
    ],
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_html_report_shows_the_card_and_raw_beside_corrected() -> None:
    from pytest_t2ibias.report.html import render_html

    card = _card(np.random.default_rng(2), scorer="noisy<script>")
    result = measure(SUITE, _doctor_data(300, seed=3), model="m", scorer="noisy<script>", n_boot=100, card=card)
    page = render_html(RunResult.from_results([result]))
    assert "<h3>Scorer card</h3>" in page
    assert "noisy&lt;script&gt;" in page and "noisy<script>" not in page  # user text escaped
    confusion = card.attributes["gender"].confusion
    assert f'<td class="num">{confusion[0][0]}</td><td class="num">{confusion[0][1]}</td>' in page
    assert result.raw_metrics is not None
    raw = result.raw_metrics["male_share"].value
    assert f'<tr><td>male_share</td><td class="num">{raw:.4f}</td>' in page
    # without a card: no such section
    plain = measure(SUITE, _doctor_data(300, seed=3), model="m", scorer="noisy", n_boot=100)
    assert "Scorer card" not in render_html(RunResult.from_results([plain]))


def test_correction_gain_is_one_over_youden_for_two_classes() -> None:
    from pytest_t2ibias.metrics.misclassification import correction_gain

    matrix = np.array([[0.90, 0.10], [0.02, 0.98]])  # women read male 10%, men read female 2%
    assert correction_gain(matrix) == pytest.approx(1 / (0.90 + 0.98 - 1))
    assert correction_gain(np.eye(3)) == pytest.approx(1.0)


def test_regression_evidence_is_on_the_corrected_scale() -> None:
    """With a card, the worsening's upper bound (what a pass needs) is stretched by the correction's gain:
    the test still runs on the labels, the evidence is about the corrected values."""
    from pytest_t2ibias.judge.baseline import BaselineRecord
    from pytest_t2ibias.judge.compare import compare_metric
    from pytest_t2ibias.metrics.engine import category_data
    from pytest_t2ibias.metrics.misclassification import correction_gain, misclassification_matrix
    from pytest_t2ibias.records import ImageRecord

    rng = np.random.default_rng(8)
    card = _card(rng)
    labels = _noisy(np.where(rng.random(300) < 0.5, "male", "female"), rng)
    flipped = np.where(rng.random(300) < 0.1, np.where(labels == "male", "female", "male"), labels)

    def result(side: np.ndarray, with_card: bool):  # type: ignore[no-untyped-def]
        records = [
            ImageRecord(image_id=f"i{i}", category="doctor", labels={"gender": str(g)}, seed=i)
            for i, g in enumerate(side)
        ]
        data = category_data(SUITE, "doctor", records, "strict")
        return measure(SUITE, data, model="m", scorer="noisy", records=records, n_boot=50,
                       card=card if with_card else None)  # fmt: skip

    uppers = []
    for with_card in (False, True):
        stored = BaselineRecord.from_result(result(labels, with_card))
        comparison = compare_metric(SUITE, result(flipped, with_card), stored, "male_share")
        assert comparison.method == "mcnemar" and comparison.upper is not None
        uppers.append(comparison.upper)
    gain = correction_gain(misclassification_matrix(card.attributes["gender"].matrix())[1])
    assert gain > 1.05 and uppers[1] == pytest.approx(uppers[0] * gain)
