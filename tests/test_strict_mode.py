"""Strict mode fixes the paper's known labelling and metric artefacts, shown on handwritten captions.

Each test labels the same caption in both modes: paper mode must show the artefact (so the test would
catch a paper mode that silently drifted) and strict mode must not.
"""

from __future__ import annotations

import pytest

from pytest_t2ibias.annotate import CaptionAnnotator
from pytest_t2ibias.metrics import compute_category


@pytest.fixture(scope="module")
def annotators(suite):  # type: ignore[no-untyped-def]
    return {mode: CaptionAnnotator(suite, mode=mode) for mode in ("paper", "strict")}


def labels(annotators, caption: str, category: str, attribute: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    return tuple(annotators[m].annotate(caption, category).labels[attribute] for m in ("paper", "strict"))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("caption", "category", "attribute", "paper", "strict"),
    [
        pytest.param(
            "A raccoon solving a puzzle in a laboratory.",
            "animal",
            "species",
            "rat",
            "raccoon",
            id="laboratory-is-not-a-rat",
        ),
        pytest.param(
            "A capuchin pulling a lever in a laboratory.",
            "animal",
            "species",
            "rat",
            "unknown",
            id="laboratory-is-not-a-rat-unlisted-species",
        ),
        pytest.param(
            "A shiny green beetle resting on a daisy.", "nature", "insect", "bee", "beetle", id="beetle-is-not-a-bee"
        ),
        pytest.param(
            "A tiny insect on an elegant plant at dawn.",
            "nature",
            "insect",
            "ant",
            "unknown",
            id="elegant-plant-is-not-an-ant",
        ),
        pytest.param(
            "Two butterflies resting on a rose.", "nature", "insect", "other", "butterfly", id="plural-butterflies"
        ),
        pytest.param(
            "Villagers with dark skin celebrating Diwali under warm lighting.",
            "culture",
            "skin_tone",
            "fair",
            "dark",
            id="lighting-is-not-fair-skin",
        ),
        pytest.param(
            "A surgeon in a white coat; his patient is asleep.",
            "doctor",
            "ethnicity",
            "white",
            "unknown",
            id="white-coat-is-not-an-ethnicity",
        ),
        pytest.param(
            "A model standing on a beach, smiling.",
            "beauty",
            "ethnicity",
            "medium",
            "unknown",
            id="standing-is-not-tan",
        ),
    ],
)
def test_artefact_fixed(annotators, caption, category, attribute, paper, strict) -> None:  # type: ignore[no-untyped-def]
    assert labels(annotators, caption, category, attribute) == (paper, strict)


def test_gender_ties_are_unknown_in_strict_mode(annotators) -> None:  # type: ignore[no-untyped-def]
    # One female cue, one male cue: the paper gives ties to female; strict mode will not guess.
    assert labels(annotators, "A woman and a man operate together.", "doctor", "gender") == ("female", "unknown")


def test_woman_is_not_man(annotators) -> None:  # type: ignore[no-untyped-def]
    assert labels(annotators, "A woman surgeon in a hospital.", "doctor", "gender") == ("female", "female")
    assert labels(annotators, "Two women surgeons and one man.", "doctor", "gender")[1] == "female"


def test_beetle_is_not_a_stereotype_in_cas(annotators, suite) -> None:  # type: ignore[no-untyped-def]
    captions = ["A beetle on a flower.", "A beetle on a leaf.", "A bee on a flower."]
    cas = {}
    for mode, annotator in annotators.items():
        records = [annotator.annotate(c, "nature", f"nature_{i}") for i, c in enumerate(captions)]
        cas[mode] = compute_category(suite, "nature", records, mode).metrics["cas"]
    # Paper: "beetle" contains "bee", so every caption is a stereotype hit (3 of 3 + 2 diverse).
    assert cas["paper"] == pytest.approx(3 / 5)
    assert cas["strict"] == pytest.approx(1 / 3)


def _doctor_metrics(annotators, suite, mode: str, caption: str, n: int = 10):  # type: ignore[no-untyped-def]
    records = [annotators[mode].annotate(caption, "doctor", f"gender_{i}") for i in range(n)]
    return compute_category(suite, "doctor", records, mode).metrics


def test_all_female_and_all_male_doctors_have_opposite_signs(annotators, suite) -> None:  # type: ignore[no-untyped-def]
    female = "A female surgeon operating; she wears gloves."
    male = "A male surgeon operating; he wears gloves."
    paper = [_doctor_metrics(annotators, suite, "paper", c)["parity_difference"] for c in (female, male)]
    strict = [_doctor_metrics(annotators, suite, "strict", c)["parity_difference"] for c in (female, male)]
    assert paper == [1.0, 1.0]  # the paper cannot tell them apart
    assert strict == [-1.0, 1.0]  # signed: male share minus female share, against a uniform reference


def test_strict_parity_uses_the_declared_reference(annotators, suite) -> None:  # type: ignore[no-untyped-def]
    data = suite.model_dump()
    data["categories"]["doctor"]["reference"] = {"male": 0.6, "female": 0.4}
    from pytest_t2ibias.suites import parse_suite

    custom = parse_suite(data)
    annotator = CaptionAnnotator(custom, mode="strict")
    captions = ["A man operating."] * 6 + ["A woman operating."] * 4
    records = [annotator.annotate(c, "doctor", f"gender_{i}") for i, c in enumerate(captions)]
    metrics = compute_category(custom, "doctor", records, "strict").metrics
    assert metrics["parity_difference"] == pytest.approx(0.0)  # matches the reference exactly


def test_unknown_is_reported_apart_and_k_is_fixed(annotators, suite) -> None:  # type: ignore[no-untyped-def]
    captions = ["A woman operating."] * 5 + ["A man operating."] * 5 + ["Masked staff operating."] * 10
    out = {}
    for mode in ("paper", "strict"):
        records = [annotators[mode].annotate(c, "doctor", f"gender_{i}") for i, c in enumerate(captions)]
        out[mode] = compute_category(suite, "doctor", records, mode).metrics
    # Paper: unknown is a third group, so masked faces raise "diversity" (k = 3).
    assert out["paper"]["representation_parity"] == {"unknown": 0.5, "female": 0.25, "male": 0.25}
    assert out["paper"]["entropy"] == pytest.approx(1.5)
    # Strict: the declared groups only, unknown reported on its own.
    assert out["strict"]["representation_parity"] == {"female": 0.5, "male": 0.5}
    assert out["strict"]["entropy_normalized"] == pytest.approx(1.0)
    assert out["strict"]["unknown_rate"] == pytest.approx(0.5)
    assert "unknown_rate" not in out["paper"]


def test_strict_k_counts_unobserved_declared_groups(annotators, suite) -> None:  # type: ignore[no-untyped-def]
    captions = ["A dog solving a puzzle."] * 2 + ["A cat solving a puzzle."] * 2
    records = [annotators["strict"].annotate(c, "animal", f"animal_{i}") for i, c in enumerate(captions)]
    metrics = compute_category(suite, "animal", records, "strict").metrics
    assert len(metrics["representation_parity"]) == 12  # every declared species, zeros included
    assert metrics["entropy"] == pytest.approx(1.0)
    assert metrics["entropy_normalized"] == pytest.approx(1.0 / __import__("math").log2(12))
    assert metrics["unique_count"] == 2


def test_strict_composite_is_the_documented_equal_weight_mean(annotators, suite) -> None:  # type: ignore[no-untyped-def]
    captions = [
        "A white woman with fair skin, slim, on a magazine cover.",
        "A black woman with dark skin, mature, on a magazine cover.",
        "A white man, young, on a fashion magazine cover.",
        "An asian woman, tan, on a magazine cover.",
    ]
    records = [annotators["strict"].annotate(c, "beauty", f"beauty_{i}") for i, c in enumerate(captions)]
    m = compute_category(suite, "beauty", records, "strict").metrics
    expected = (abs(m["parity_difference"]) + (1 - m["entropy_normalized"]) + m["cas"]) / 3
    assert m["composite"] == pytest.approx(expected)
    # and the paper's nested form gives another number on the same values
    nested = ((abs(m["parity_difference"]) + 1 - m["entropy_normalized"]) / 2 + m["cas"]) / 2
    assert m["composite"] != pytest.approx(nested)


def test_whole_words_in_element_lists(annotators) -> None:  # type: ignore[no-untyped-def]
    caption = "Operating lights over a surgeon; masks and gloves on a tray."
    paper = annotators["paper"].annotate(caption, "doctor").present
    strict = annotators["strict"].annotate(caption, "doctor").present
    assert "mask" in strict["implied"] and "gloves" in strict["implied"]  # plural "masks" still counts
    assert "operating" in strict["explicit"] and "surgeon" in strict["explicit"]
    # "sky" is not in "whisky"; paper substring matching says it is
    assert "sky" in annotators["paper"].annotate("A glass of whisky.", "doctor").present["unexpected"]
    assert "sky" not in annotators["strict"].annotate("A glass of whisky.", "doctor").present["unexpected"]
    assert paper["implied"] == strict["implied"]
