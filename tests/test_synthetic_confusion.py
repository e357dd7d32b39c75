"""The synthetic scorer's configurable confusion (issue 14, item 2): it misreads the mark at the set rates,
the same way every time for an image's seed, independently of the label drawn, and says so in its
scorer id."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator, confusion_matrix_of, misread_uniform
from pytest_t2ibias.errors import SyntheticConfigError
from pytest_t2ibias.generate.synthetic import SyntheticGenerator
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
PROMPT = SUITE.categories["doctor"].prompts[0]
NOISY = {"gender": {"female": {"male": 0.10}, "male": {"female": 0.02}}}
N = 3000


@pytest.fixture(scope="module")
def items() -> list[AnnotationInput]:
    seeds = list(range(N))
    images = SyntheticGenerator(SUITE).generate([PROMPT] * N, seeds)
    return [AnnotationInput(f"doctor_p0_i{s}", im, PROMPT, s) for s, im in zip(seeds, images, strict=True)]


def _truth(seeds: list[int]) -> list[str]:
    gen = SyntheticGenerator(SUITE)
    return [gen.draw("doctor", s).labels["gender"] for s in seeds]


def test_misreads_at_the_set_rates(items: list[AnnotationInput]) -> None:
    records = SyntheticAnnotator(SUITE, NOISY).annotate(items, "doctor")
    truth = np.array(_truth([i.seed for i in items]))  # type: ignore[misc]
    read = np.array([r.labels["gender"] for r in records])
    women, men = truth == "female", truth == "male"
    f_as_m = (read[women] == "male").mean()
    m_as_f = (read[men] == "female").mean()
    # 3 binomial standard errors at ~1500 images per group
    assert abs(f_as_m - 0.10) < 3 * np.sqrt(0.1 * 0.9 / women.sum())
    assert abs(m_as_f - 0.02) < 3 * np.sqrt(0.02 * 0.98 / men.sum())
    # only the configured attribute is misread
    exact = SyntheticAnnotator(SUITE).annotate(items, "doctor")
    assert [r.labels["ethnicity"] for r in records] == [r.labels["ethnicity"] for r in exact]
    assert [r.present for r in records] == [r.present for r in exact]


def test_same_seed_same_misreading_in_any_order(items: list[AnnotationInput]) -> None:
    first = {r.image_id: r.labels["gender"] for r in SyntheticAnnotator(SUITE, NOISY).annotate(items[:400], "doctor")}
    shuffled = items[:400]
    random.Random(0).shuffle(shuffled)
    again = {r.image_id: r.labels["gender"] for r in SyntheticAnnotator(SUITE, NOISY).annotate(shuffled, "doctor")}
    assert first == again


def test_misreading_is_independent_of_the_label_drawn() -> None:
    # the decision uniform depends on the seed, category and attribute only: a model with another bias
    # misreads the same seeds (among those whose truth is the misread group)
    u = np.array([misread_uniform(s, "doctor", "gender") for s in range(N)])
    truth = np.array(_truth(list(range(N))))
    # uniform on [0, 1) and unrelated to the truth
    assert 0.45 < u.mean() < 0.55
    assert abs(u[truth == "male"].mean() - u[truth == "female"].mean()) < 0.03


def test_streams_misread_other_images(items: list[AnnotationInput]) -> None:
    a = [r.labels["gender"] for r in SyntheticAnnotator(SUITE, NOISY, stream=0).annotate(items[:1000], "doctor")]
    b = [r.labels["gender"] for r in SyntheticAnnotator(SUITE, NOISY, stream=1).annotate(items[:1000], "doctor")]
    assert a != b


def test_without_confusion_nothing_changes(items: list[AnnotationInput]) -> None:
    plain = SyntheticAnnotator(SUITE)
    assert plain.scorer_id == "synthetic-mark-reader:v1"
    assert [r.labels["gender"] for r in plain.annotate(items[:200], "doctor")] == _truth(list(range(200)))


def test_scorer_id_follows_the_confusion_and_stream() -> None:
    ids = {
        SyntheticAnnotator(SUITE).scorer_id,
        SyntheticAnnotator(SUITE, NOISY).scorer_id,
        SyntheticAnnotator(SUITE, NOISY, stream=1).scorer_id,
        SyntheticAnnotator(SUITE, {"gender": {"female": {"male": 0.11}, "male": {"female": 0.02}}}).scorer_id,
    }
    assert len(ids) == 4
    assert SyntheticAnnotator(SUITE, NOISY).scorer_id == SyntheticAnnotator(SUITE, NOISY).scorer_id


def test_expected_confusion_matrix() -> None:
    outcomes, m = confusion_matrix_of(SyntheticAnnotator(SUITE, NOISY), "gender")
    assert outcomes == ["female", "male", "unknown"]
    assert np.allclose(m, [[0.9, 0.1, 0], [0.02, 0.98, 0], [0, 0, 1]])


def test_scorer_spec_with_a_yaml_config(tmp_path: Path, items: list[AnnotationInput]) -> None:
    path = tmp_path / "scorer.yaml"
    path.write_text("confusion:\n  gender:\n    female: {male: 0.10}\n    male: {female: 0.02}\n")
    annotator = load_annotator(f"synthetic:{path}", SUITE)
    assert annotator.scorer_id == SyntheticAnnotator(SUITE, NOISY).scorer_id
    assert [r.labels for r in annotator.annotate(items[:100], "doctor")] == [
        r.labels for r in SyntheticAnnotator(SUITE, NOISY).annotate(items[:100], "doctor")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("confusion:\n  gendr:\n    female: {male: 0.1}\n", r"field `confusion.gendr`: no attribute 'gendr'"),
        ("confusion:\n  gender:\n    woman: {male: 0.1}\n", r"field `confusion.gender.woman`: 'woman' is not one of"),
        ("confusion:\n  gender:\n    female: {male: 0.7, unknown: 0.5}\n", r"error rates sum to 1.2 > 1"),
        ("confusion:\n  gender:\n    female: {male: 1.5}\n", r"field `confusion.gender.female.male`"),
        ("stream: -1\n", r"field `stream`"),
        ("confusions: {}\n", r"field `confusions`"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scorer.yaml"
    path.write_text(text)
    with pytest.raises(SyntheticConfigError, match=rf"{path}: .*{message}"):
        load_annotator(f"synthetic:{path}", SUITE)
