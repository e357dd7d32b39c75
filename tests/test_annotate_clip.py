"""CLIP zero-shot annotator on the tiny random-weight CLIPs of both backends (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from annotate_inputs import annotation_items, noise_images
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.clip import NEUTRAL_PHRASE, TERM_TEMPLATE, ClipAnnotator, ClipThresholds
from pytest_t2ibias.annotate.clip_backends import build_tiny_hf_clip, hf_clip_backend, load_clip_backend
from pytest_t2ibias.generate.diffusers_adapter import ModelLoadError, resolve_dtype
from pytest_t2ibias.suites.schema import Suite

BACKENDS = ["tiny-open_clip", "tiny-hf"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return load_clip_backend(request.param, device="cpu", batch_size=4)


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    return noise_images(n, seed)


def _items(suite: Suite, category: str, n: int = 6) -> list[AnnotationInput]:
    return annotation_items(suite, category, n)


def test_embeddings_are_unit_rows_and_batch_independent(backend) -> None:  # type: ignore[no-untyped-def]
    images = _images(9)
    batched = backend.encode_images(images)
    assert batched.shape[0] == 9
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([backend.encode_images([image]) for image in images])
    # Different batch shapes may take different CPU matmul kernels: equal up to float32 rounding.
    assert np.allclose(batched, one_by_one, atol=1e-5)


def test_labels_follow_the_prompt_ensembles(backend, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend, ClipThresholds(person_threshold=float("-inf")))
    items = _items(suite, "beauty")
    records = annotator.annotate(items, "beauty")
    images = backend.encode_images([item.image for item in items])
    for attribute in ("ethnicity", "gender", "skin_tone"):
        groups = suite.attributes[attribute].groups
        protos = []
        for group in groups.values():
            mean = backend.encode_texts(group.phrases).mean(axis=0)
            protos.append(mean / np.linalg.norm(mean))
        expected = [list(groups)[i] for i in np.argmax(images @ np.stack(protos).T, axis=1)]
        assert [r.labels[attribute] for r in records] == expected


def test_presence_is_a_contrast_against_the_neutral_phrase(backend, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend)
    items = _items(suite, "doctor", 3)
    records = annotator.annotate(items, "doctor")
    images = backend.encode_images([item.image for item in items])
    neutral = images @ backend.encode_texts([NEUTRAL_PHRASE])[0]
    terms = suite.categories["doctor"].term_list("implied")
    contrast = images @ backend.encode_texts([TERM_TEMPLATE.format(term=t) for t in terms]).T - neutral[:, None]
    for i, record in enumerate(records):
        assert record.present["implied"] == [t for t, c in zip(terms, contrast[i], strict=True) if c > 0.0]
        assert record.scores["implied"] == pytest.approx(dict(zip(terms, contrast[i].tolist(), strict=True)), abs=1e-5)


@pytest.mark.parametrize(("threshold", "expect_all"), [(float("-inf"), True), (float("inf"), False)])
def test_presence_threshold(backend, suite, threshold: float, expect_all: bool) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend, ClipThresholds(presence_threshold=threshold))
    for record in annotator.annotate(_items(suite, "nature", 2), "nature"):
        for list_name in suite.categories["nature"].list_names():
            terms = suite.categories["nature"].term_list(list_name)
            assert record.present[list_name] == (terms if expect_all else [])


def test_no_person_means_unknown_only_in_people_categories(backend, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend, ClipThresholds(person_threshold=float("inf")))
    assert all(set(r.labels.values()) == {"unknown"} for r in annotator.annotate(_items(suite, "doctor"), "doctor"))
    animals = annotator.annotate(_items(suite, "animal"), "animal")
    assert all(r.labels["species"] in suite.attributes["species"].groups for r in animals)


def test_small_margin_means_unknown(backend, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend, ClipThresholds(min_margin=2.0))  # cosines differ by < 2
    assert {r.labels["species"] for r in annotator.annotate(_items(suite, "animal"), "animal")} == {"unknown"}


def test_clip_score_and_embedding_are_kept(backend, suite) -> None:  # type: ignore[no-untyped-def]
    items = _items(suite, "culture", 4)
    records = ClipAnnotator(suite, backend).annotate(items, "culture")
    images = backend.encode_images([item.image for item in items])
    prompt = backend.encode_texts([items[0].prompt])[0]
    expected = 2.5 * np.maximum(images @ prompt, 0.0)
    assert [r.clip_score for r in records] == pytest.approx(expected.tolist(), abs=1e-5)
    assert np.allclose(np.array([r.embedding for r in records]), images, atol=1e-6)
    assert [r.seed for r in records] == [0, 1, 2, 3]


def test_text_embeddings_are_computed_once(backend, suite, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend)
    annotator.annotate(_items(suite, "doctor", 2), "doctor")
    calls: list[int] = []
    original = backend.encode_texts
    monkeypatch.setattr(backend, "encode_texts", lambda texts: calls.append(len(texts)) or original(texts))
    annotator.annotate(_items(suite, "doctor", 3), "doctor")
    assert calls == []


def test_scorer_id_names_backend_and_thresholds(backend, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend, ClipThresholds(min_margin=0.02, presence_threshold=0.01))
    assert annotator.scorer_id.startswith(f"clip:{backend.id}|")
    assert "margin=0.02" in annotator.scorer_id and "presence=0.01" in annotator.scorer_id


def test_duplicate_ids_and_unknown_category_are_errors(backend, suite) -> None:  # type: ignore[no-untyped-def]
    annotator = ClipAnnotator(suite, backend)
    items = _items(suite, "doctor", 2)
    with pytest.raises(ValueError, match="duplicate image ids"):
        annotator.annotate([items[0], items[0]], "doctor")
    with pytest.raises(ValueError, match="`category` must be one of"):
        annotator.annotate(items, "dentist")


def test_tiny_hf_clip_round_trips_through_a_local_folder(tmp_path: Path) -> None:
    model, processor = build_tiny_hf_clip()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    built = hf_clip_backend(model, processor, "built", "cpu", resolve_dtype("fp32", "cpu"), 8)
    loaded = load_clip_backend(f"hf:{tmp_path}", device="cpu")
    images = _images(3)
    assert np.allclose(built.encode_images(images), loaded.encode_images(images), atol=1e-6)
    assert np.allclose(built.encode_texts(["a doctor"]), loaded.encode_texts(["a doctor"]), atol=1e-6)
    assert loaded.id == f"hf:{tmp_path}"


def test_unavailable_checkpoints_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="'/no/such/clip' does not exist"):
        load_clip_backend("hf:/no/such/clip", device="cpu")
    with pytest.raises(ModelLoadError, match="cannot load CLIP model 'nobody/no-clip'"):
        load_clip_backend("hf:nobody/no-clip", device="cpu")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_clip_backend(f"open_clip:ViT-B-32/{tmp_path}/missing.safetensors", device="cpu")
    pickle_file = tmp_path / "weights.pt"
    pickle_file.write_bytes(b"not really a checkpoint")
    with pytest.raises(ModelLoadError, match=r"only \.safetensors"):
        load_clip_backend(f"open_clip:ViT-B-32/{pickle_file}", device="cpu")
    with pytest.raises(ValueError, match="`scorer` must be"):
        load_clip_backend("clip-large", device="cpu")


def test_gpu_defaults_to_fp16_and_cpu_to_fp32() -> None:
    import torch

    assert resolve_dtype("auto", "cuda") == torch.float16
    assert resolve_dtype("auto", "cpu") == torch.float32


def test_evaluate_command_reports_embedding_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_t2ibias.cli import main

    args = ["evaluate", "--model", "tiny", "--scorer", "tiny", "--images-per-prompt", "3", "--no-progress"]
    assert main([*args, "--cache", str(tmp_path / "cache"), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scorer"].startswith("clip:tiny-open_clip|")
    assert out["model"].startswith("tiny:")
    for name, category in out["categories"].items():
        assert category["n"] == 3, name
        assert 1.0 <= category["metrics"]["vendi_embedding"] <= 3.0
        assert category["metrics"]["clip_score"] >= 0.0
        assert category["metrics"]["vendi"] is None  # no captions: the lexical proxy says why
        assert "captions" in category["null_reasons"]["vendi"]
