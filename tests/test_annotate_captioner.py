"""Captioner annotator (image-to-text model + lexicons) on a tiny random-weight BLIP built in memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from annotate_inputs import annotation_items, noise_images
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.annotate.captioner import CaptionerAnnotator, ImageTextProcessor, build_tiny_captioner
from pytest_t2ibias.annotate.captions import CaptionAnnotator
from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.annotate.vqa import suite_texts, tiny_bert_tokenizer
from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode

CATEGORIES = ["beauty", "doctor", "culture", "animal", "nature"]


@pytest.fixture(scope="module")
def tiny(suite: Suite) -> tuple[Any, Any]:
    return build_tiny_captioner(suite)


@pytest.fixture(scope="module")
def annotator(suite: Suite, tiny: tuple[Any, Any]) -> CaptionerAnnotator:
    model, processor = tiny
    return CaptionerAnnotator(suite, model, processor, model_id="tiny", device="cpu")


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    return noise_images(n, seed)


def _items(suite: Suite, category: str, n: int = 4) -> list[AnnotationInput]:
    return annotation_items(suite, category, n)


@pytest.mark.parametrize("category", CATEGORIES)
def test_records_are_complete(annotator: CaptionerAnnotator, suite: Suite, category: str) -> None:
    items = _items(suite, category)
    records = annotator.annotate(items, category)
    spec = suite.categories[category]
    attributes = ([spec.attribute] if spec.attribute else []) + list(spec.also_annotate)
    for item, record in zip(items, records, strict=True):
        assert (record.image_id, record.category, record.seed) == (item.image_id, category, item.seed)
        assert (record.prompt, record.image_path) == (item.prompt, item.image_path)
        assert isinstance(record.caption, str) and record.caption
        assert set(record.labels) == set(attributes)
        for attribute, label in record.labels.items():
            assert label in {*suite.attributes[attribute].groups, "unknown"}
        assert list(record.present) == spec.list_names()
        for name, found in record.present.items():
            terms = spec.term_list(name)
            assert found == [t for t in terms if t in found]  # a subset, in list order


def test_the_random_captions_are_made_of_suite_words(annotator: CaptionerAnnotator, suite: Suite) -> None:
    records = annotator.annotate(_items(suite, "doctor", 6), "doctor")
    words = set(" ".join(suite_texts(suite)).lower().split())
    assert all(set(r.caption.split()) <= words | {"-", "*"} for r in records if r.caption)
    # the labelling path is exercised, not only "unknown"
    assert any(label != "unknown" for r in records for label in r.labels.values())


@pytest.mark.parametrize("mode", ["paper", "strict"])
def test_labels_are_the_caption_annotators(suite: Suite, tiny: tuple[Any, Any], mode: Mode) -> None:
    model, processor = tiny
    annotator = CaptionerAnnotator(suite, model, processor, mode=mode, device="cpu")
    labeller = CaptionAnnotator(suite, mode)
    for category in ("beauty", "animal"):
        for record in annotator.annotate(_items(suite, category), category):
            assert record.caption is not None
            expected = labeller.annotate(record.caption, category)
            assert (record.labels, record.present) == (expected.labels, expected.present)


def test_caption_equals_a_hand_written_greedy_generate(annotator: CaptionerAnnotator, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    images = _images(2)
    for image, caption in zip(images, annotator.caption(images), strict=True):
        inputs = processor(images=[image], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=30, do_sample=False, num_beams=1)
        assert caption == processor.batch_decode(out, skip_special_tokens=True)[0].strip()


def test_batch_size_does_not_change_captions(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    items = _items(suite, "culture", 7)
    one = CaptionerAnnotator(suite, model, processor, device="cpu", batch_size=1, max_new_tokens=12)
    seven = CaptionerAnnotator(suite, model, processor, device="cpu", batch_size=7, max_new_tokens=12)
    assert one.annotate(items, "culture") == seven.annotate(items, "culture")


def test_same_inputs_same_records_and_two_builds_agree(annotator: CaptionerAnnotator, suite: Suite) -> None:
    items = _items(suite, "nature", 3)
    first = annotator.annotate(items, "nature")
    assert annotator.annotate(items, "nature") == first
    model, processor = build_tiny_captioner(suite)
    assert CaptionerAnnotator(suite, model, processor, device="cpu").annotate(items, "nature") == first


def test_max_new_tokens_bounds_the_caption(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    annotator = CaptionerAnnotator(suite, model, processor, device="cpu", max_new_tokens=3)
    assert all(len(caption.split()) <= 3 for caption in annotator.caption(_images(3)))
    assert annotator.scorer_id == "captioner:custom|mode=strict|max_new_tokens=3"


def test_a_prompt_is_continued_and_kept_as_blip_does(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    annotator = CaptionerAnnotator(suite, model, processor, device="cpu", prompt="a photo of", max_new_tokens=3)
    captions = annotator.caption(_images(2))
    assert all(c.startswith("a photo of ") and len(c.split()) <= 6 for c in captions)


def test_scorer_id_names_model_mode_and_length(suite: Suite, tiny: tuple[Any, Any]) -> None:
    model, processor = tiny
    annotator = CaptionerAnnotator(suite, model, processor, model_id="org/blip", mode="paper", device="cpu")
    assert annotator.scorer_id == "captioner:org/blip|mode=paper|max_new_tokens=30"
    prompted = CaptionerAnnotator(suite, model, processor, model_id="org/blip", device="cpu", prompt="a photo of")
    assert prompted.scorer_id.endswith("|prompt='a photo of'")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "lenient"}, "`mode` must be one of"),
        ({"max_new_tokens": 0}, "`max_new_tokens` must be >= 1"),
        ({"batch_size": 0}, "`batch_size` must be >= 1"),
    ],
)
def test_invalid_settings(suite: Suite, tiny: tuple[Any, Any], kwargs: dict[str, Any], match: str) -> None:
    model, processor = tiny
    with pytest.raises(ValueError, match=match):
        CaptionerAnnotator(suite, model, processor, device="cpu", **kwargs)


def test_input_checks(annotator: CaptionerAnnotator, suite: Suite) -> None:
    items = _items(suite, "doctor", 2)
    with pytest.raises(ValueError, match="duplicate image ids"):
        annotator.annotate([items[0], items[0]], "doctor")
    with pytest.raises(ValueError, match="`category` must be one of"):
        annotator.annotate(items, "dentist")
    assert annotator.annotate([], "doctor") == []


def test_a_saved_tiny_model_loads_back_with_the_same_records(
    annotator: CaptionerAnnotator, suite: Suite, tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = CaptionerAnnotator.from_spec(str(tmp_path), suite, device="cpu")
    assert loaded.scorer_id == f"captioner:{tmp_path}|mode=strict|max_new_tokens=30"
    items = _items(suite, "doctor")
    assert loaded.annotate(items, "doctor") == annotator.annotate(items, "doctor")


def test_a_vision_encoder_decoder_without_processor_config_loads(suite: Suite, tmp_path: Path) -> None:
    from transformers import (
        BertConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tokenizer = tiny_bert_tokenizer(suite_texts(suite))
    tower = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        ViTConfig(**tower, image_size=64, patch_size=16),
        BertConfig(**tower, vocab_size=len(tokenizer), is_decoder=True, add_cross_attention=True),
    )
    config.decoder_start_token_id = tokenizer.cls_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.sep_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        VisionEncoderDecoderModel(config).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)  # no processor config: AutoProcessor gives the tokenizer alone

    annotator = CaptionerAnnotator.from_spec(str(tmp_path), suite, device="cpu", max_new_tokens=5)
    assert isinstance(annotator.processor, ImageTextProcessor)
    records = annotator.annotate(_items(suite, "animal", 2), "animal")
    assert all(r.caption and len(r.caption.split()) <= 5 for r in records)


def test_a_missing_path_fails_before_transformers_is_asked(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("transformers was called")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", refuse)
    with pytest.raises(ModelLoadError, match="'/no/such/dir' does not exist"):
        CaptionerAnnotator.from_spec("/no/such/dir", suite, device="cpu")


def test_an_offline_hub_id_is_a_clear_error(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"cannot load image-to-text model 'nobody/no-such-captioner'.*offline\?"):
        CaptionerAnnotator.from_spec("nobody/no-such-captioner", suite, device="cpu")


def test_factory_builds_the_tiny_captioner_in_the_given_mode(suite: Suite) -> None:
    annotator = load_annotator("captioner:tiny", suite, mode="paper", device="cpu")
    assert isinstance(annotator, CaptionerAnnotator) and isinstance(annotator, ImageAnnotator)
    assert annotator.scorer_id == "captioner:tiny|mode=paper|max_new_tokens=30"
    assert len(annotator.annotate(_items(suite, "doctor", 2), "doctor")) == 2


def test_cli_evaluate_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_t2ibias.cli import main

    argv = ["evaluate", "--model", "tiny", "--scorer", "captioner:tiny", "--images-per-prompt", "2"]
    argv += ["--category", "doctor", "--no-progress", "--no-cache", "--format", "json", "--device", "cpu"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scorer"] == "captioner:tiny|mode=strict|max_new_tokens=30"
    doctor = result["categories"]["doctor"]
    assert doctor["n"] == 2
    assert isinstance(doctor["metrics"]["gmr"], float)
    assert isinstance(doctor["metrics"]["vendi"], float)  # the lexical Vendi reads the captions
