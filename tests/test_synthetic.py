"""The synthetic model and its mark reader: exact round trip, known frequencies, paired and re-drawn seeds, errors.

The generator's draws are the ground truth (``SyntheticGenerator.draw``); every check of the annotator
compares against them, and every statistical check uses a fixed set of seeds, so these tests are
deterministic; the 3-standard-error bounds are what a fresh set of seeds would pass 99.7% of the time.
"""

from __future__ import annotations

import doctest
import importlib
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator
from pytest_t2ibias.generate.base import ImageGenerator
from pytest_t2ibias.generate.seeds import image_seed
from pytest_t2ibias.generate.synthetic import SyntheticConfigError, SyntheticGenerator
from pytest_t2ibias.metrics.data import CategoryData
from pytest_t2ibias.metrics.engine import compute_data
from pytest_t2ibias.pipeline import evaluate_suite
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites import load_suite
from pytest_t2ibias.suites.schema import Suite

SUITE = load_suite("t2i-biasbench")
CATEGORIES = list(SUITE.categories)
DOCTOR = SUITE.categories["doctor"].prompts[0]
N = 2000

#: Skewed, with ``unknown``, zero-probability groups and uneven presence: exercises every kind of cell.
SKEWED = {
    "presence": 0.3,
    "categories": {
        "doctor": {
            "attribute": {"male": 0.7, "female": 0.2, "unknown": 0.1},
            "also_annotate": {"skin_tone": {"fair": 0.6, "medium": 0.3, "dark": 0.1}},
            "presence": {"explicit": 0.9, "unexpected": 0.05},
        },
        "beauty": {"attribute": {"white": 0.5, "asian": 0.2, "black": 0.1, "medium": 0.1, "unknown": 0.1}},
        "animal": {"attribute": {"dog": 0.4, "cat": 0.3, "squirrel": 0.2, "unknown": 0.1}},
        "culture": {"presence": {"cultural_markers": 0.15}},
    },
}


def _seeds(category: str, n: int = N) -> list[int]:
    """The seeds the generation stage would give image 0..n-1 of the category's first prompt."""
    return [image_seed(SUITE.seed, category, 0, i) for i in range(n)]


def _annotate(suite: Suite, images: list[Image.Image], category: str, seeds: list[int]) -> list[ImageRecord]:
    prompt = suite.categories[category].prompts[0]
    items = [
        AnnotationInput(f"{category}_p0_i{i}", im, prompt, s)
        for i, (im, s) in enumerate(zip(images, seeds, strict=True))
    ]
    return SyntheticAnnotator(suite).annotate(items, category)


def _png_round_trip(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return Image.open(buffer)


def _within_3_se(observed: float, p: float, n: int) -> bool:
    return abs(observed - p) <= 3 * math.sqrt(p * (1 - p) / n)


def test_implements_the_stage_protocols() -> None:
    generator = SyntheticGenerator(SUITE)
    assert isinstance(generator, ImageGenerator)
    assert isinstance(SyntheticAnnotator(SUITE), ImageAnnotator)
    assert generator.params == {"size": 64}
    assert generator.fingerprint.startswith("synthetic:")
    assert SyntheticAnnotator(SUITE).scorer_id == "synthetic-mark-reader:v1"


@pytest.mark.parametrize("png", [False, True], ids=["in-memory", "png"])
@pytest.mark.parametrize("category", CATEGORIES)
def test_round_trip_recovers_every_draw(category: str, png: bool) -> None:
    generator = SyntheticGenerator(SUITE, SKEWED)
    seeds = _seeds(category, 200)
    images = generator.generate([SUITE.categories[category].prompts[0]] * len(seeds), seeds)
    if png:
        images = [_png_round_trip(im) for im in images]
    records = _annotate(SUITE, images, category, seeds)
    spec = SUITE.categories[category]
    for record, seed in zip(records, seeds, strict=True):
        truth = generator.draw(category, seed)
        assert record.labels == truth.labels
        assert record.present == truth.present
        assert list(record.labels) == [spec.attribute, *spec.also_annotate]
        assert list(record.present) == spec.list_names()
        assert record.seed == seed


def test_round_trip_through_a_png_file_at_another_size(tmp_path: Path) -> None:
    generator = SyntheticGenerator(SUITE, SKEWED, size=32)
    image = generator.generate([DOCTOR], [11])[0]
    image.save(tmp_path / "mark.png")
    with Image.open(tmp_path / "mark.png") as loaded:
        assert loaded.size == (32, 32)
        (record,) = _annotate(SUITE, [loaded], "doctor", [11])
    assert record.labels == generator.draw("doctor", 11).labels


def test_same_seed_same_image_in_any_batch() -> None:
    first = SyntheticGenerator(SUITE, SKEWED).generate([DOCTOR] * 3, [5, 6, 7])
    again = SyntheticGenerator(SUITE, SKEWED, batch_size=1).generate([DOCTOR], [6])[0]
    assert np.array_equal(np.asarray(first[1]), np.asarray(again))
    assert first[1].mode == "RGB"
    # the light background is the first thing a reader of the report sees
    assert np.asarray(first[1])[0, 0].min() >= 200


def test_label_and_presence_frequencies_match_the_configuration() -> None:
    generator = SyntheticGenerator(SUITE, SKEWED)
    seeds = _seeds("doctor")
    records = _annotate(SUITE, generator.generate([DOCTOR] * N, seeds), "doctor", seeds)
    config = SKEWED["categories"]["doctor"]  # type: ignore[index]
    checks = [("gender", config["attribute"]), ("skin_tone", config["also_annotate"]["skin_tone"])]
    # ethnicity is not configured: uniform over its six declared groups, never unknown
    checks.append(("ethnicity", dict.fromkeys(SUITE.attributes["ethnicity"].groups, 1 / 6) | {"unknown": 0.0}))
    for attribute, probabilities in checks:
        labels = [r.labels[attribute] for r in records]
        for group, p in probabilities.items():
            share = labels.count(group) / N
            assert _within_3_se(share, p, N) if 0 < p < 1 else share == p, (attribute, group, share, p)
    for list_name, p in [("explicit", 0.9), ("unexpected", 0.05), ("implied", 0.3), ("keywords", 0.3)]:
        terms = SUITE.categories["doctor"].term_list(list_name)
        for term in terms:
            share = sum(term in r.present[list_name] for r in records) / N
            assert _within_3_se(share, p, N), (list_name, term, share, p)


def test_a_small_shift_changes_few_paired_labels_and_only_towards_the_shift() -> None:
    baseline = SyntheticGenerator.from_probabilities(SUITE, {"doctor": {"male": 0.5, "female": 0.5}})
    candidate = baseline.with_probabilities("doctor", {"male": 0.65, "female": 0.35})
    seeds = _seeds("doctor")
    before = _annotate(SUITE, baseline.generate([DOCTOR] * N, seeds), "doctor", seeds)
    after = _annotate(SUITE, candidate.generate([DOCTOR] * N, seeds), "doctor", seeds)
    moved = [
        (b.labels["gender"], a.labels["gender"]) for b, a in zip(before, after, strict=True) if b.labels != a.labels
    ]
    assert 0.10 <= len(moved) / N <= 0.20
    assert set(moved) == {("female", "male")}
    assert all(b.present == a.present for b, a in zip(before, after, strict=True))


def test_fingerprint_follows_the_resolved_distribution() -> None:
    uniform = SyntheticGenerator.from_probabilities(SUITE, {"doctor": {"female": 0.5, "male": 0.5}})
    assert uniform.fingerprint == SyntheticGenerator(SUITE).fingerprint  # the default spelled out
    assert uniform.with_probabilities("doctor", {"male": 0.6, "female": 0.4}).fingerprint != uniform.fingerprint
    presence = SyntheticGenerator.from_probabilities(SUITE, {}, presence={"doctor": {"implied": 0.1}})
    assert presence.fingerprint != uniform.fingerprint
    assert SyntheticGenerator(SUITE, size=32).fingerprint == uniform.fingerprint  # size is a param instead


def test_with_probabilities_can_shift_an_also_annotate_attribute() -> None:
    generator = SyntheticGenerator(SUITE).with_probabilities("doctor", {"dark": 1.0}, attribute="skin_tone")
    assert {generator.draw("doctor", s).labels["skin_tone"] for s in range(50)} == {"dark"}


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"categories": {"surgeon": {}}}, r"`categories.surgeon`: no category 'surgeon'"),
        ({"categories": {"doctor": {"attribute": {"mal": 0.5, "female": 0.5}}}}, r"'mal' is not a group of.*gender"),
        ({"categories": {"doctor": {"attribute": {"male": 0.6, "female": 0.3}}}}, r"must sum to 1, got 0\.9"),
        ({"categories": {"doctor": {"attribute": {"male": 1.5, "female": -0.5}}}}, r"must be in \[0, 1\], got 1\.5"),
        ({"categories": {"doctor": {"also_annotate": {"species": {"dog": 1.0}}}}}, r"'species' is not an also_"),
        ({"categories": {"doctor": {"also_annotate": {"skin_tone": {"pale": 1.0}}}}}, r"also_annotate.skin_tone"),
        ({"categories": {"doctor": {"presence": {"cultural_markers": 0.5}}}}, r"'cultural_markers' is not a term"),
        ({"categories": {"doctor": {"presence": {"explicit": 2}}}}, r"presence.explicit.*got 2"),
        ({"presence": -0.1}, r"field `presence`.*got -0\.1"),
        ({"categories": {"doctor": {"atribute": {}}}}, r"categories.doctor.atribute.*Extra inputs"),
    ],
    ids=[
        "unknown-category",
        "unknown-group",
        "sum",
        "range",
        "not-also-annotate",
        "also-group",
        "unknown-list",
        "presence-range",
        "default-presence",
        "typo",
    ],
)
def test_config_errors_name_field_and_value(config: dict[str, object], match: str) -> None:
    with pytest.raises(SyntheticConfigError, match=match):
        SyntheticGenerator(SUITE, config)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"size": 40}, r"`size` must be a positive multiple of 16, got 40"), ({"batch_size": 0}, r"`batch_size`")],
)
def test_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticGenerator(SUITE, **kwargs)


def test_unknown_prompt_is_named() -> None:
    with pytest.raises(ValueError, match=r"prompt 'A cat on a sofa\.' is not a prompt of suite 't2i-biasbench'"):
        SyntheticGenerator(SUITE).generate([DOCTOR, "A cat on a sofa."], [0, 1])


def test_from_spec_reads_a_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "biased.yaml"
    path.write_text(
        "presence: 0.0\ncategories:\n  doctor:\n    attribute: {male: 1.0, female: 0.0}\n"
        "    presence: {explicit: 1.0}\n",
        encoding="utf-8",
    )
    generator = SyntheticGenerator.from_spec(f"synthetic:{path}", SUITE)
    draws = [generator.draw("doctor", s) for s in range(50)]
    assert {d.labels["gender"] for d in draws} == {"male"}
    assert all(d.present["explicit"] == SUITE.categories["doctor"].term_list("explicit") for d in draws)
    assert all(d.present["implied"] == [] for d in draws)
    assert SyntheticGenerator.from_spec("synthetic", SUITE).fingerprint == SyntheticGenerator(SUITE).fingerprint


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, r"no such synthetic config file"),
        ("categories: [doctor", r"not valid YAML at line 1"),
        ("- doctor\n", r"must be a mapping, got list"),
        ("categories:\n  doctor:\n    attribute: {male: 0.2}\n", r"`categories.doctor.attribute`: .*sum to 1"),
        ("categories:\n  dentist: {}\n", r"`categories.dentist`: no category"),
    ],
    ids=["missing", "yaml", "not-mapping", "sum", "category"],
)
def test_from_spec_errors_name_the_file(tmp_path: Path, text: str | None, match: str) -> None:
    path = tmp_path / "model.yaml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SyntheticConfigError, match=match) as info:
        SyntheticGenerator.from_spec(f"synthetic:{path}", SUITE)
    assert str(path) in str(info.value)


def test_from_spec_rejects_another_spec() -> None:
    with pytest.raises(ValueError, match=r"`spec` must be 'synthetic' or 'synthetic:PATH', got 'tiny'"):
        SyntheticGenerator.from_spec("tiny", SUITE)


def test_a_photo_has_no_mark() -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"image 'holiday_photo' carries no synthetic mark.*not solid colours"):
        SyntheticAnnotator(SUITE).annotate([AnnotationInput("holiday_photo", noise, DOCTOR)], "doctor")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda im: im.resize((50, 50)), r"side divisible by 16, got 50x50"),
        (lambda im: im.resize((128, 128), Image.Resampling.BILINEAR), r"not solid colours"),
        (lambda im: Image.new("RGB", (64, 64), (240, 240, 240)), r"barcode"),
    ],
    ids=["odd-size", "resampled", "blank"],
)
def test_damaged_marks_are_rejected(damage: Callable[[Image.Image], Image.Image], match: str) -> None:
    image = damage(SyntheticGenerator(SUITE).generate([DOCTOR], [3])[0])
    with pytest.raises(ValueError, match=rf"image 'doctor_p0_i0'.*{match}"):
        _annotate(SUITE, [image], "doctor", [3])


def test_an_image_read_as_another_category_names_its_own() -> None:
    image = SyntheticGenerator(SUITE).generate([DOCTOR], [3])[0]
    with pytest.raises(ValueError, match=r"not that of 'beauty' \(it is an image of category 'doctor'\)"):
        SyntheticAnnotator(SUITE).annotate([AnnotationInput("x", image, DOCTOR)], "beauty")


def test_end_to_end_male_share_matches_the_configuration() -> None:
    p, n = 0.7, 200
    generator = SyntheticGenerator.from_probabilities(SUITE, {"doctor": {"male": p, "female": 1 - p}})
    evaluation = evaluate_suite(
        SUITE,
        generator,
        SyntheticAnnotator(SUITE),
        mode="strict",
        images_per_prompt=n,
        categories=["doctor"],
        cache=None,
    )
    metrics = evaluation.result.categories["doctor"]
    assert metrics.n == n
    male_share = metrics.metrics["male_share"]
    assert isinstance(male_share, float)
    assert _within_3_se(male_share, p, n)
    assert metrics.metrics["unknown_rate"] == 0.0
    assert evaluation.result.scorer == "synthetic-mark-reader:v1"
    assert evaluation.result.model == generator.fingerprint


@pytest.mark.parametrize("name", ["pytest_t2ibias.generate.synthetic", "pytest_t2ibias.annotate.synthetic"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("category", CATEGORIES)
def test_columns_are_the_draws_of_many_images(category: str) -> None:
    generator = SyntheticGenerator(
        SUITE, {"presence": 0.3, "categories": {"doctor": {"attribute": {"male": 0.7, "female": 0.2, "unknown": 0.1}}}}
    )
    seeds = [0, 5, 17, 123456, 99]
    columns = generator.columns(category, generator.uniforms(category, seeds))
    for i, seed in enumerate(seeds):
        draw = generator.draw(category, seed)
        assert {name: str(labels[i]) for name, labels in columns.labels.items()} == draw.labels
        spec = SUITE.categories[category]
        got = {
            name: [t for t, hit in zip(spec.term_list(name), matrix[i], strict=True) if hit]
            for name, matrix in columns.present.items()
        }
        assert got == draw.present


# ---------------------------------------------------------------------------------------------------------
# Scenarios: re-drawn images, sparse terms, a value on a bound


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per seed (row): whether any of its uniforms differ."""
    changed: np.ndarray = (before != after).any(axis=1)
    return changed


def test_redraw_zero_changes_nothing_bit_for_bit() -> None:
    plain = SyntheticGenerator(SUITE, SKEWED)
    zero = SyntheticGenerator(SUITE, {**SKEWED, "redraw": 0.0, "redraw_stream": 7})
    assert plain.with_redraw(0.0).config.redraw == 0.0
    for category in CATEGORIES:
        seeds = _seeds(category, 500)
        u = plain.uniforms(category, seeds)
        k = u.shape[1]
        assert np.array_equal(u, np.stack([np.random.default_rng(s).random(k) for s in seeds]))
        assert np.array_equal(zero.uniforms(category, seeds), u)
    assert zero.fingerprint == plain.fingerprint
    images = [SyntheticGenerator(SUITE, SKEWED).generate([DOCTOR] * 5, range(5)), zero.generate([DOCTOR] * 5, range(5))]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(*images, strict=True))


def test_redraw_changes_about_that_fraction_of_seeds_and_leaves_the_rest_identical() -> None:
    plain = SyntheticGenerator(SUITE, SKEWED)
    seeds = _seeds("doctor")
    before = plain.uniforms("doctor", seeds)
    counts = {}
    for fraction in (0.1, 0.2):
        after = plain.with_redraw(fraction).uniforms("doctor", seeds)
        changed = _changed(before, after)
        counts[fraction] = changed
        # a binomial count of N seeds: within 3 standard errors of N * fraction
        assert abs(changed.sum() - N * fraction) <= 3 * math.sqrt(N * fraction * (1 - fraction)), changed.sum()
        assert np.array_equal(after[~changed], before[~changed])  # bitwise
        assert (before[changed] != after[changed]).all()  # a re-drawn image shares no uniform with the old one
    # nested: the seeds re-drawn at 0.1 are re-drawn at 0.2 too, to the same new image
    assert not (counts[0.1] & ~counts[0.2]).any()
    at_01 = plain.with_redraw(0.1).uniforms("doctor", seeds)
    at_02 = plain.with_redraw(0.2).uniforms("doctor", seeds)
    assert np.array_equal(at_01[counts[0.1]], at_02[counts[0.1]])


def test_redraw_is_reproducible_and_streams_are_independent() -> None:
    plain = SyntheticGenerator(SUITE, SKEWED)
    seeds = _seeds("doctor")
    before = plain.uniforms("doctor", seeds)
    one = plain.with_redraw(0.2).uniforms("doctor", seeds)
    assert np.array_equal(SyntheticGenerator(SUITE, {**SKEWED, "redraw": 0.2}).uniforms("doctor", seeds), one)
    two = plain.with_redraw(0.2, stream=2).uniforms("doctor", seeds)
    c1, c2 = _changed(before, one), _changed(before, two)
    # stream 2 picks its seeds independently of stream 1: both re-draw about 4% (0.2 * 0.2) of the seeds
    both = (c1 & c2).sum()
    assert abs(both - N * 0.04) <= 3 * math.sqrt(N * 0.04 * 0.96), both
    assert (one[c1 & c2] != two[c1 & c2]).all()  # and draws other images for them


def test_redraw_one_changes_every_seed_and_keeps_the_distribution() -> None:
    plain = SyntheticGenerator(SUITE, SKEWED)
    n = 5000
    seeds = _seeds("doctor", n)
    redrawn = plain.with_redraw(1.0)
    before, after = plain.uniforms("doctor", seeds), redrawn.uniforms("doctor", seeds)
    assert _changed(before, after).all()
    columns = redrawn.columns("doctor", after)
    config = SKEWED["categories"]["doctor"]  # type: ignore[index]
    for attribute, probabilities in [
        ("gender", config["attribute"]),
        ("skin_tone", config["also_annotate"]["skin_tone"]),
    ]:
        for group, p in probabilities.items():
            share = float(np.mean(columns.labels[attribute] == group))
            assert _within_3_se(share, p, n), (attribute, group, share, p)
    for list_name, p in [("explicit", 0.9), ("unexpected", 0.05), ("implied", 0.3)]:
        for share in columns.present[list_name].mean(axis=0):
            assert _within_3_se(float(share), p, n), (list_name, share, p)
    # independent of the old images: two labels agree as often as two independent draws do (sum of p^2)
    agree = float(np.mean(plain.columns("doctor", before).labels["gender"] == columns.labels["gender"]))
    assert _within_3_se(agree, 0.7**2 + 0.2**2 + 0.1**2, n), agree


def test_generate_draw_and_columns_agree_on_redrawn_seeds() -> None:
    plain = SyntheticGenerator(SUITE, SKEWED)
    generator = plain.with_redraw(0.5, stream=3)
    for category in CATEGORIES:
        seeds = _seeds(category, 60)
        changed = _changed(plain.uniforms(category, seeds), generator.uniforms(category, seeds))
        assert 0 < changed.sum() < len(seeds)
        images = generator.generate([SUITE.categories[category].prompts[0]] * len(seeds), seeds)
        records = _annotate(SUITE, [_png_round_trip(im) for im in images], category, seeds)
        columns = generator.columns(category, generator.uniforms(category, seeds))
        spec = SUITE.categories[category]
        for i, (record, seed) in enumerate(zip(records, seeds, strict=True)):
            truth = generator.draw(category, seed)
            assert record.labels == truth.labels
            assert record.present == truth.present
            assert {name: str(labels[i]) for name, labels in columns.labels.items()} == truth.labels
            got = {
                name: [t for t, hit in zip(spec.term_list(name), matrix[i], strict=True) if hit]
                for name, matrix in columns.present.items()
            }
            assert got == truth.present


def test_fingerprint_follows_redraw_and_with_probabilities_keeps_it() -> None:
    plain = SyntheticGenerator(SUITE, SKEWED)
    prints = {
        plain.fingerprint,
        plain.with_redraw(0.2).fingerprint,
        plain.with_redraw(0.3).fingerprint,
        plain.with_redraw(0.2, stream=2).fingerprint,
        plain.with_redraw(1.0).fingerprint,
    }
    assert len(prints) == 5
    assert plain.with_redraw(0.0, stream=9).fingerprint == plain.fingerprint  # no re-draw: the same images
    assert plain.with_redraw(0.2).fingerprint == SyntheticGenerator(SUITE, {**SKEWED, "redraw": 0.2}).fingerprint

    redrawing = SyntheticGenerator(SUITE, SKEWED, size=32, batch_size=4).with_redraw(0.2, stream=5)
    assert (redrawing.size, redrawing.batch_size, redrawing.config.categories) == (32, 4, plain.config.categories)
    shifted = redrawing.with_probabilities("doctor", {"male": 0.5, "female": 0.5})
    assert (shifted.config.redraw, shifted.config.redraw_stream) == (0.2, 5)
    seeds = _seeds("doctor", 500)
    # the same seeds re-drawn, to the same uniforms: the shift moves labels along them
    assert np.array_equal(shifted.uniforms("doctor", seeds), redrawing.uniforms("doctor", seeds))
    assert shifted.fingerprint != plain.with_probabilities("doctor", {"male": 0.5, "female": 0.5}).fingerprint


def test_from_spec_reads_redraw_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "retrained.yaml"
    path.write_text("redraw: 0.3\nredraw_stream: 4\ncategories:\n  doctor:\n    attribute: {male: 0.6, female: 0.4}\n")
    generator = SyntheticGenerator.from_spec(f"synthetic:{path}", SUITE)
    assert (generator.config.redraw, generator.config.redraw_stream) == (0.3, 4)
    plain = SyntheticGenerator.from_probabilities(SUITE, {"doctor": {"male": 0.6, "female": 0.4}})
    assert generator.fingerprint != plain.fingerprint
    assert generator.fingerprint == plain.with_redraw(0.3, stream=4).fingerprint
    seeds = _seeds("doctor")
    changed = _changed(plain.uniforms("doctor", seeds), generator.uniforms("doctor", seeds)).sum()
    assert abs(changed - N * 0.3) <= 3 * math.sqrt(N * 0.3 * 0.7), changed
    path.write_text("redraw: 1\n")  # an integer is a number
    assert SyntheticGenerator.from_spec(f"synthetic:{path}", SUITE).config.redraw == 1.0


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"redraw": -0.1}, r"field `redraw`: the fraction of images re-drawn must be in \[0, 1\], got -0\.1"),
        ({"redraw": 1.5}, r"field `redraw`: .*in \[0, 1\], got 1\.5"),
        ({"redraw": "x"}, r"field `redraw`: Input should be a valid number \(got 'x'\)"),
        ({"redraw": True}, r"field `redraw`: Input should be a valid number \(got True\)"),
        ({"redraw": float("nan")}, r"field `redraw`: .*got nan"),
        ({"redraw": 0.2, "redraw_stream": -1}, r"field `redraw_stream`: .*greater than or equal to 0 \(got -1\)"),
        ({"redraw": 0.2, "redraw_stream": "x"}, r"field `redraw_stream`: Input should be a valid integer"),
        ({"redraw": 0.2, "redraw_stream": 1.5}, r"field `redraw_stream`: Input should be a valid integer"),
        ({"redraws": 0.2}, r"field `redraws`: Extra inputs"),
    ],
    ids=["negative", "above-one", "string", "bool", "nan", "stream-negative", "stream-string", "stream-float", "typo"],
)
def test_redraw_errors_are_one_line_naming_the_field(config: dict[str, object], match: str) -> None:
    with pytest.raises(SyntheticConfigError, match=match) as info:
        SyntheticGenerator(SUITE, config)
    assert "\n" not in str(info.value)


def test_with_redraw_rejects_what_the_config_rejects(tmp_path: Path) -> None:
    with pytest.raises(SyntheticConfigError, match=r"field `redraw`: .*got 1\.5"):
        SyntheticGenerator(SUITE).with_redraw(1.5)
    with pytest.raises(SyntheticConfigError, match=r"field `redraw_stream`"):
        SyntheticGenerator(SUITE).with_redraw(0.5, stream=-2)
    path = tmp_path / "bad.yaml"
    path.write_text("redraw: x\n")
    with pytest.raises(
        SyntheticConfigError, match=r"bad\.yaml: field `redraw`: Input should be a valid number"
    ) as info:
        SyntheticGenerator.from_spec(f"synthetic:{path}", SUITE)
    assert "\n" not in str(info.value)


def test_sparse_terms_show_at_their_small_presence() -> None:
    config = {"presence": 0.01, "categories": {"culture": {"presence": {"cultural_markers": 0.002}}}}
    generator = SyntheticGenerator(SUITE, config)
    n = 5000
    for category in ("doctor", "culture"):
        columns = generator.columns(category, generator.uniforms(category, _seeds(category, n)))
        for name, matrix in columns.present.items():
            expected = 0.002 if name == "cultural_markers" else 0.01
            assert matrix.any()  # rare, not absent
            # pooled over the list's terms (independent uniforms): one check per list, not one per term
            share = float(matrix.mean())
            assert _within_3_se(share, expected, matrix.size), (category, name, share, expected)


@pytest.mark.parametrize(
    ("category", "term_metrics"), [("doctor", ["gmr", "iemr"]), ("culture", ["cas", "car", "gmr"])]
)
def test_sparse_terms_run_end_to_end_at_small_n(category: str, term_metrics: list[str]) -> None:
    generator = SyntheticGenerator(SUITE, {"presence": 0.01})
    evaluation = evaluate_suite(
        SUITE,
        generator,
        SyntheticAnnotator(SUITE),
        mode="strict",
        images_per_prompt=15,
        categories=[category],
        cache=None,
    )
    metrics = evaluation.result.categories[category]
    assert metrics.n == 15 * len(SUITE.categories[category].prompts)
    for name in term_metrics:
        value = metrics.metrics[name]
        assert isinstance(value, float) and math.isfinite(value), (name, value)


@pytest.mark.parametrize(
    "probabilities",
    [{"male": 0.75, "female": 0.25}, {"male": 0.6, "female": 0.2, "unknown": 0.2}],
    ids=["known", "with-unknown"],
)
def test_probabilities_put_parity_on_a_bound(probabilities: dict[str, float]) -> None:
    # strict signed parity of doctor is (p_male - p_female) / (p_male + p_female): 0.5, on a `max: 0.5` bound
    generator = SyntheticGenerator.from_probabilities(SUITE, {"doctor": probabilities})
    n = 20_000
    columns = generator.columns("doctor", generator.uniforms("doctor", _seeds("doctor", n)))
    data = CategoryData.from_columns(
        SUITE, "doctor", "strict", labels=columns.labels["gender"], present=columns.present
    )
    values = compute_data(data, only=["parity_difference", "male_share"]).metrics
    known = n * (probabilities["male"] + probabilities["female"])
    se_share = math.sqrt(0.75 * 0.25 / known)
    assert abs(values["male_share"] - 0.75) <= 3 * se_share, values  # type: ignore[operator]
    assert abs(values["parity_difference"] - 0.5) <= 3 * 2 * se_share, values  # type: ignore[operator]
