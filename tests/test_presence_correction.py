"""Presence metrics corrected with a scorer card's per-term judgements (issue 14): a scorer that misses
20% of the terms that are there and sees 10% of those that are not biases GMR and IEMR; the card's recall
and specificity per term undo it (Rogan-Gladen, term by term), the interval carries the card's own
uncertainty, and the bound test runs on the corrected scale."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_t2ibias.metrics.corrected_draws import term_cards
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.intervals import bound_p_value
from pytest_t2ibias.metrics.result import measure
from pytest_t2ibias.metrics.scorer_card import ScorerCard, term_card
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
TRUE_RATE = {"explicit": 0.6, "implied": 0.7, "unexpected": 0.1}
RECALL, SPECIFICITY = 0.8, 0.9


def _scored(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the noisy scorer reports for true presence ``truth``."""
    u = rng.random(truth.shape)
    return np.where(truth, u < RECALL, u >= SPECIFICITY)


def _card(rng: np.random.Generator, audit: int = 300) -> ScorerCard:
    """A card from an audit of ``audit`` images: every term of the explicit and implied lists judged."""
    spec = SUITE.categories["doctor"]
    terms = {}
    for list_name in ("explicit", "implied"):
        for term in spec.term_list(list_name):
            human = rng.random(audit) < 0.5
            terms[f"{list_name}:{term}"] = term_card(human.tolist(), _scored(human, rng).tolist())
    return ScorerCard(scorer="noisy", images_hash="h", n_images=audit, terms=terms)


def _data(n: int, rng: np.random.Generator) -> tuple[CategoryData, CategoryData]:
    """(the truth, what the noisy scorer reports) for ``n`` doctor images."""
    spec = SUITE.categories["doctor"]
    labels = rng.choice(["male", "female"], size=n).tolist()
    true, seen = {}, {}
    for list_name in spec.list_names():
        shape = (n, len(spec.term_list(list_name)))
        true[list_name] = rng.random(shape) < TRUE_RATE.get(list_name, 0.5)
        seen[list_name] = _scored(true[list_name], rng)
    make = CategoryData.from_columns
    return (
        make(SUITE, "doctor", "strict", labels=labels, present=true),
        make(SUITE, "doctor", "strict", labels=labels, present=seen),
    )


def test_the_card_names_the_terms_of_each_list() -> None:
    card = _card(np.random.default_rng(0))
    _, seen = _data(10, np.random.default_rng(1))
    found = term_cards(seen, card.terms)
    assert sorted(found) == ["explicit", "implied"]
    assert [i for i, _ in found["explicit"]] == list(range(6))


def test_corrected_gmr_and_iemr_are_unbiased_and_covered() -> None:
    rng = np.random.default_rng(2)
    card = _card(rng)
    truth, seen = _data(1500, rng)
    true = measure(SUITE, truth, model="m", scorer="s", metrics=["gmr", "iemr", "hallucination"])
    got = measure(SUITE, seen, model="m", scorer="noisy", metrics=["gmr", "iemr", "hallucination"], card=card)
    assert got.raw_metrics is not None
    for metric_id in ("gmr", "iemr"):
        raw = got.raw_metrics[metric_id].value
        value, interval = got.metrics[metric_id].value, got.metrics[metric_id].interval
        target = true.metrics[metric_id].value
        assert isinstance(raw, float) and isinstance(value, float) and isinstance(target, float)
        assert abs(raw - target) > 0.05  # the scorer's errors bias the raw rate by several points
        assert abs(value - target) < 0.03
        assert interval is not None and interval.method == "misclassification-bootstrap"
        assert interval.low <= target <= interval.high
    # "any term of a list" needs the joint errors: not corrected
    assert got.metrics["hallucination"] == got.raw_metrics["hallucination"]
    assert got.scorer == "noisy|card:h"


def test_the_card_widens_the_interval() -> None:
    """The corrected interval carries the run's sampling error and the card's: wider than the raw one."""
    rng = np.random.default_rng(3)
    card = _card(rng, audit=100)
    _, seen = _data(400, rng)
    got = measure(SUITE, seen, model="m", scorer="noisy", metrics=["gmr"], card=card)
    assert got.raw_metrics is not None
    raw, corrected = got.raw_metrics["gmr"].interval, got.metrics["gmr"].interval
    assert raw is not None and corrected is not None
    assert corrected.high - corrected.low > 1.2 * (raw.high - raw.low)


def test_the_bound_test_runs_on_the_corrected_scale() -> None:
    rng = np.random.default_rng(4)
    card = _card(rng)
    _, seen = _data(800, rng)
    got = measure(SUITE, seen, model="m", scorer="noisy", metrics=["gmr"], card=card)
    assert got.data is not None and got.data.term_cards is not None
    corrected = got.metrics["gmr"].value
    raw = got.raw_metrics["gmr"].value if got.raw_metrics else None
    assert isinstance(corrected, float) and isinstance(raw, float) and raw > corrected
    between = (raw + corrected) / 2  # the raw value is above this bound, the corrected one below
    assert bound_p_value(got.data, "gmr", between, "max") == 1.0
    assert bound_p_value(seen, "gmr", between, "max") < 0.01


def test_a_term_never_seen_present_in_the_audit_stays_raw() -> None:
    card = ScorerCard(
        scorer="s",
        images_hash="h",
        n_images=3,
        terms={"explicit:doctor": term_card([False, False, False], [True, False, False])},
    )
    _, seen = _data(10, np.random.default_rng(5))
    assert term_cards(seen, card.terms) == {}
    got = measure(SUITE, seen, model="m", scorer="s", metrics=["gmr"], card=card)
    assert got.raw_metrics is None  # nothing to correct: the raw metrics, the scorer id unchanged
    assert got.scorer == "s"


@pytest.mark.parametrize("seed", [0, 1])
def test_the_same_card_and_seed_give_the_same_numbers(seed: int) -> None:
    card = _card(np.random.default_rng(6))
    _, seen = _data(200, np.random.default_rng(7))
    a = measure(SUITE, seen, model="m", scorer="s", metrics=["gmr"], card=card, seed=seed)
    b = measure(SUITE, seen, model="m", scorer="s", metrics=["gmr"], card=card, seed=seed)
    assert a.metrics["gmr"] == b.metrics["gmr"]
