"""VQA (yes/no, P(yes)) annotator on a tiny random-weight ViLT built in memory (offline)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from annotate_inputs import annotation_items, noise_images
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.annotate.vqa import (
    VqaAnnotator,
    build_tiny_vqa,
    group_question,
    term_question,
    yes_no_indices,
    yes_probability,
)
from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import Suite

CATEGORIES = ["beauty", "doctor", "culture", "animal", "nature"]
#: the question templates' hash, as recorded in the scorer id (editing a template makes baselines stale)
QUESTIONS = hashlib.sha256(b"Is there {term} in the image?\x1fDoes this image show {subject}?").hexdigest()[:8]


@pytest.fixture(scope="module")
def tiny(suite: Suite) -> tuple[Any, Any]:
    return build_tiny_vqa(suite)


@pytest.fixture(scope="module")
def annotator(suite: Suite, tiny: tuple[Any, Any]) -> VqaAnnotator:
    model, processor = tiny
    return VqaAnnotator(suite, model, processor, model_id="tiny", device="cpu")


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    return noise_images(n, seed)


def _items(suite: Suite, category: str, n: int = 3) -> list[AnnotationInput]:
    return annotation_items(suite, category, n)


def _attributes(suite: Suite, category: str) -> list[str]:
    spec = suite.categories[category]
    return ([spec.attribute] if spec.attribute else []) + list(spec.also_annotate)


def _is_ordered_subset(found: list[str], terms: list[str]) -> bool:
    positions = [terms.index(t) for t in found if t in terms]
    return len(positions) == len(found) and positions == sorted(set(positions))


@pytest.mark.parametrize("category", CATEGORIES)
def test_records_are_complete_and_consistent(annotator: VqaAnnotator, suite: Suite, category: str) -> None:
    items = _items(suite, category)
    records = annotator.annotate(items, category)
    spec = suite.categories[category]
    assert [r.image_id for r in records] == [item.image_id for item in items]
    for item, record in zip(items, records, strict=True):
        assert (record.category, record.seed, record.prompt) == (category, item.seed, item.prompt)
        assert record.image_path == item.image_path
        assert set(record.labels) == set(_attributes(suite, category))
        for attribute, label in record.labels.items():
            groups = record.scores[attribute]
            assert list(groups) == list(suite.attributes[attribute].groups)
            best = max(groups, key=groups.__getitem__)
            assert label == (best if groups[best] >= annotator.label_threshold else "unknown")
        assert list(record.present) == spec.list_names()
        for name, found in record.present.items():
            terms = spec.term_list(name)
            assert _is_ordered_subset(found, terms)
            assert list(record.scores[name]) == terms
            assert found == [t for t in terms if record.scores[name][t] > annotator.presence_threshold]
        assert all(0.0 <= p <= 1.0 for scores in record.scores.values() for p in scores.values())


def test_p_yes_equals_a_hand_written_forward_pass(annotator: VqaAnnotator, suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    items = _items(suite, "doctor", 2)
    records = annotator.annotate(items, "doctor")
    yes, no = model.config.label2id["yes"], model.config.label2id["no"]
    for item, record in zip(items, records, strict=True):
        checks = [
            ("implied", "stethoscope", "Is there stethoscope in the image?"),
            ("gender", "female", "Does this image show a woman?"),
            ("ethnicity", "asian", "Does this image show an east asian person?"),
        ]
        for key, name, question in checks:
            inputs = processor(images=[item.image], text=[question], return_tensors="pt")
            with torch.no_grad():
                logits = model(**inputs).logits[0]
            expected = torch.softmax(torch.stack([logits[yes], logits[no]]), dim=0)[0].item()
            assert record.scores[key][name] == pytest.approx(expected, abs=1e-6)


def test_batch_size_does_not_change_results(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    items = _items(suite, "animal", 3)
    one = VqaAnnotator(suite, model, processor, device="cpu", batch_size=1).annotate(items, "animal")
    seven = VqaAnnotator(suite, model, processor, device="cpu", batch_size=7).annotate(items, "animal")
    for a, b in zip(one, seven, strict=True):
        assert (a.labels, a.present) == (b.labels, b.present)
        for key, scores in a.scores.items():
            # other batch shapes may take other CPU kernels: equal up to float32 rounding
            assert scores == pytest.approx(b.scores[key], abs=1e-6)


def test_same_inputs_same_records_and_caller_rng_untouched(annotator: VqaAnnotator, suite: Suite) -> None:
    items = _items(suite, "nature", 2)
    state = torch.get_rng_state()
    first = annotator.annotate(items, "nature")
    assert torch.equal(torch.get_rng_state(), state)
    assert annotator.annotate(items, "nature") == first


def test_two_independently_built_tiny_models_agree(suite: Suite) -> None:
    (m1, p1), (m2, p2) = build_tiny_vqa(suite), build_tiny_vqa(suite)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))
    assert p1.tokenizer.get_vocab() == p2.tokenizer.get_vocab()
    items = _items(suite, "doctor", 2)
    first = VqaAnnotator(suite, m1, p1, device="cpu").annotate(items, "doctor")
    assert VqaAnnotator(suite, m2, p2, device="cpu").annotate(items, "doctor") == first


@pytest.mark.parametrize(("threshold", "expect_all"), [(0.0, True), (1.0, False)])
def test_presence_follows_the_threshold(
    suite: Suite, tiny: tuple[Any, Any], threshold: float, expect_all: bool
) -> None:
    model, processor = tiny
    annotator = VqaAnnotator(suite, model, processor, device="cpu", presence_threshold=threshold)
    spec = suite.categories["nature"]
    for record in annotator.annotate(_items(suite, "nature", 2), "nature"):
        assert record.present == {n: spec.term_list(n) if expect_all else [] for n in spec.list_names()}


def test_label_threshold_one_means_unknown_and_zero_means_a_group(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    items = _items(suite, "beauty", 2)
    strict = VqaAnnotator(suite, model, processor, device="cpu", label_threshold=1.0).annotate(items, "beauty")
    assert {label for r in strict for label in r.labels.values()} == {"unknown"}
    lenient = VqaAnnotator(suite, model, processor, device="cpu", label_threshold=0.0).annotate(items, "beauty")
    assert all(r.labels[a] in suite.attributes[a].groups for r in lenient for a in r.labels)


def test_questions() -> None:
    assert term_question("symmetr*") == "Is there symmetr in the image?"
    assert term_question("blue eyes") == "Is there blue eyes in the image?"
    assert group_question("a photo of a woman") == "Does this image show a woman?"
    assert group_question("a photo of an east asian person") == "Does this image show an east asian person?"
    assert group_question("an old woman") == "Does this image show an old woman?"


def test_p_yes_is_a_two_way_softmax_or_a_sigmoid() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 9.0]])
    both = yes_probability(logits, yes=0, no=1)
    assert both.tolist() == pytest.approx([1 / (1 + np.exp(-3.0)), 0.5])  # the third answer takes no mass
    assert yes_probability(logits, yes=0, no=None).tolist() == pytest.approx([1 / (1 + np.exp(-2.0)), 0.5])
    assert yes_no_indices({"No": 4, "Yes": 7, "2": 0}, "m") == (7, 4)
    assert yes_no_indices({"yes": 3}, "m") == (3, None)


def test_a_model_without_a_yes_answer_is_a_clear_error(suite: Suite) -> None:
    model = SimpleNamespace(config=SimpleNamespace(label2id={"LABEL_0": 0, "LABEL_1": 1}))
    with pytest.raises(ValueError, match=r"VQA model 'some/captioner' has no 'yes' answer .*captioner:"):
        VqaAnnotator(suite, model, processor=None, model_id="some/captioner", device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"presence_threshold": 1.5}, "`presence_threshold` must be a probability"),
        ({"label_threshold": -0.1}, "`label_threshold` must be a probability"),
        ({"batch_size": 0}, "`batch_size` must be >= 1"),
    ],
)
def test_invalid_settings(suite: Suite, tiny: tuple[Any, Any], kwargs: dict[str, Any], match: str) -> None:
    model, processor = tiny
    with pytest.raises(ValueError, match=match):
        VqaAnnotator(suite, model, processor, device="cpu", **kwargs)


def test_input_checks(annotator: VqaAnnotator, suite: Suite) -> None:
    items = _items(suite, "doctor", 2)
    with pytest.raises(ValueError, match="duplicate image ids"):
        annotator.annotate([items[0], items[0]], "doctor")
    with pytest.raises(ValueError, match="`category` must be one of"):
        annotator.annotate(items, "dentist")
    assert annotator.annotate([], "doctor") == []


def test_scorer_id_names_model_and_thresholds(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    annotator = VqaAnnotator(
        suite, model, processor, model_id="org/vqa", device="cpu", presence_threshold=0.3, label_threshold=0.6
    )
    assert annotator.scorer_id == f"vqa:org/vqa|presence=0.3|label=0.6|questions={QUESTIONS}"


def test_a_saved_tiny_model_loads_back_with_the_same_records(
    annotator: VqaAnnotator, suite: Suite, tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = VqaAnnotator.from_spec(str(tmp_path), suite, device="cpu")
    assert loaded.scorer_id.startswith(f"vqa:{tmp_path}|")
    items = _items(suite, "culture", 2)
    for a, b in zip(annotator.annotate(items, "culture"), loaded.annotate(items, "culture"), strict=True):
        assert (a.labels, a.present) == (b.labels, b.present)
        for key, scores in a.scores.items():
            assert scores == pytest.approx(b.scores[key], abs=1e-6)


def test_a_missing_path_fails_before_transformers_is_asked(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("transformers was called")

    monkeypatch.setattr(transformers.AutoModelForVisualQuestionAnswering, "from_pretrained", refuse)
    with pytest.raises(ModelLoadError, match="'/no/such/dir' does not exist"):
        VqaAnnotator.from_spec("/no/such/dir", suite, device="cpu")


def test_an_offline_hub_id_is_a_clear_error(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    # set after huggingface_hub was imported: the annotator must still honour it (no network retries)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"cannot load VQA model 'nobody/no-such-vqa'.*offline\?"):
        VqaAnnotator.from_spec("nobody/no-such-vqa", suite, device="cpu")


def test_factory_builds_the_tiny_vqa(suite: Suite) -> None:
    annotator = load_annotator("vqa:tiny", suite, device="cpu")
    assert isinstance(annotator, VqaAnnotator) and isinstance(annotator, ImageAnnotator)
    assert annotator.scorer_id == f"vqa:tiny|presence=0.5|label=0.5|questions={QUESTIONS}"
    records = annotator.annotate(_items(suite, "doctor", 2), "doctor")
    assert all(isinstance(r, ImageRecord) for r in records)


def test_cli_evaluate_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_t2ibias.cli import main

    argv = ["evaluate", "--model", "tiny", "--scorer", "vqa:tiny", "--images-per-prompt", "2", "--category", "doctor"]
    argv += ["--no-progress", "--no-cache", "--format", "json", "--device", "cpu"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scorer"] == f"vqa:tiny|presence=0.5|label=0.5|questions={QUESTIONS}"
    doctor = result["categories"]["doctor"]
    assert doctor["n"] == 2
    assert isinstance(doctor["metrics"]["gmr"], float)
