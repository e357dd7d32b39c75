"""The embedding metrics against independent references, on the same inputs.

* Vendi Score: ``vendi_score.vendi`` (Friedman & Dieng's package). Its ``score_dual(X)`` and ``score_X(X)``
  L2-normalise the rows (``sklearn.preprocessing.normalize``) and take the eigenvalues of ``X^T X / n`` /
  ``X X^T / n``; ``score_K(K, normalize=True)`` turns a kernel into the cosine kernel and divides it by n;
  ``score(samples, k)`` builds K from a kernel function. All are on our scale (1 .. n): no rescaling.
* CLIPScore: ``torchmetrics.multimodal.clip_score.CLIPScore`` loading the same random-weight transformers
  CLIP from a folder written with ``save_pretrained``. It reports ``max(mean_i(100 * cos_i), 0)``; we report
  Hessel et al.'s ``2.5 * max(cos_i, 0)`` per image, so one pair compares as ``ours * 100 / 2.5``, and a
  batch compares as the mean only when every cos is positive (torchmetrics clamps after averaging).
* The engine: records with ``embedding`` / ``clip_score`` add ``vendi_embedding`` / ``clip_score``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from PIL import Image

from pytest_t2ibias.annotate.base import AnnotationInput
from pytest_t2ibias.annotate.clip import ClipAnnotator
from pytest_t2ibias.annotate.clip_backends import TINY_IMAGE_SIZE, ClipBackend, build_tiny_hf_clip, hf_clip_backend
from pytest_t2ibias.metrics import compute_category
from pytest_t2ibias.metrics.embedding import CLIPSCORE_WEIGHT, clip_scores, vendi_score
from pytest_t2ibias.records import ImageRecord

vendi = pytest.importorskip("vendi_score.vendi", reason="the reference needs `pip install vendi-score`")

pytestmark = pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")  # inside vendi_score

#: Agreement asked of every reference comparison (after rescaling to the reference's scale).
TOL = 1e-5
#: torchmetrics' CLIPScore is 100 * cos; ours is CLIPSCORE_WEIGHT * cos.
TO_TORCHMETRICS = 100 / CLIPSCORE_WEIGHT


def _random_embeddings(n: int, d: int, seed: int) -> NDArray[np.float64]:
    return np.random.default_rng(seed).normal(size=(n, d))


def _cosine(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------------------------------------- Vendi


@pytest.mark.parametrize(
    ("n", "d"),
    [(1, 4), (2, 1), (3, 5), (5, 3), (8, 8), (10, 64), (64, 10), (200, 16), (16, 200)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
class TestVendiAgainstReference:
    """Seeded random embeddings (n > d, n < d, n = d): ours equals every form of the reference."""

    def test_score_dual(self, n: int, d: int, seed: int) -> None:
        x = _random_embeddings(n, d, seed)
        assert vendi_score(x) == pytest.approx(float(vendi.score_dual(x)), abs=TOL)

    def test_score_x(self, n: int, d: int, seed: int) -> None:
        x = _random_embeddings(n, d, seed)
        assert vendi_score(x) == pytest.approx(float(vendi.score_X(x)), abs=TOL)

    def test_score_k_of_the_cosine_kernel(self, n: int, d: int, seed: int) -> None:
        x = _random_embeddings(n, d, seed)
        assert vendi_score(x) == pytest.approx(float(vendi.score_K(x @ x.T, normalize=True)), abs=TOL)

    def test_score_with_a_kernel_function(self, n: int, d: int, seed: int) -> None:
        x = _random_embeddings(n, d, seed)
        assert vendi_score(x) == pytest.approx(float(vendi.score(list(x), _cosine)), abs=TOL)

    def test_row_scale_does_not_matter(self, n: int, d: int, seed: int) -> None:
        x = _random_embeddings(n, d, seed)
        scaled = x * np.random.default_rng(seed + 100).uniform(0.1, 10.0, size=(n, 1))
        assert vendi_score(scaled) == pytest.approx(vendi_score(x), abs=TOL)
        assert vendi_score(scaled) == pytest.approx(float(vendi.score_dual(scaled)), abs=TOL)


def test_vendi_reference_agreement_is_far_below_tolerance() -> None:
    worst = max(
        abs(vendi_score(x) - float(vendi.score_dual(x)))
        for n, d in [(5, 3), (3, 5), (64, 10), (10, 64), (200, 16)]
        for x in [_random_embeddings(n, d, 7)]
    )
    assert worst < 1e-9


@pytest.mark.parametrize("n", [1, 2, 7])
def test_vendi_identical_rows_is_one(n: int) -> None:
    row = _random_embeddings(1, 5, 3)
    assert vendi_score(np.repeat(row, n, axis=0)) == pytest.approx(1.0, abs=1e-9)
    assert vendi_score(row * np.arange(1, n + 1)[:, None]) == pytest.approx(1.0, abs=1e-9)  # same direction


@pytest.mark.parametrize(("n", "d"), [(1, 1), (2, 2), (3, 8), (8, 8), (16, 32)])
def test_vendi_orthonormal_rows_is_n(n: int, d: int) -> None:
    q, _ = np.linalg.qr(_random_embeddings(d, d, n))
    rows = q[:n]
    assert vendi_score(rows) == pytest.approx(float(n), abs=1e-9)
    assert vendi_score(rows * np.arange(1, n + 1)[:, None]) == pytest.approx(float(n), abs=1e-9)  # orthogonal
    assert float(vendi.score_dual(rows)) == pytest.approx(float(n), abs=1e-9)


def test_vendi_equal_clusters_count_as_one_each() -> None:
    basis = np.eye(4)
    clusters = np.repeat(basis[:3], 5, axis=0)  # 3 directions, 5 copies each
    assert vendi_score(clusters) == pytest.approx(3.0, abs=1e-9)


def test_vendi_cosine_kernel_treats_opposite_rows_as_one() -> None:
    # cos(x, -x) = -1: K = [[1, -1], [-1, 1]] has rank 1, so the cosine-kernel Vendi is 1 (so is the reference's).
    x = np.array([[1.0, 2.0], [-1.0, -2.0]])
    assert vendi_score(x) == pytest.approx(1.0, abs=1e-9)
    assert float(vendi.score_dual(x)) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("embeddings", "match"),
    [
        pytest.param([1.0, 2.0], r"`embeddings` must be an \(n, d\) matrix with n, d > 0, got shape \(2,\)", id="1d"),
        pytest.param(np.zeros((0, 3)), r"`embeddings` must be an \(n, d\) matrix .* got shape \(0, 3\)", id="no-rows"),
        pytest.param(np.zeros((3, 0)), r"`embeddings` must be an \(n, d\) matrix .* got shape \(3, 0\)", id="no-dims"),
        pytest.param(np.ones((2, 2, 2)), r"`embeddings` must be an \(n, d\) matrix .* got shape \(2, 2, 2\)", id="3d"),
        pytest.param([[1.0, 0.0], [0.0, 0.0]], r"`embeddings` has a zero or non-finite row", id="zero-row"),
        pytest.param([[1.0, np.nan], [0.0, 1.0]], r"`embeddings` has a zero or non-finite row", id="nan"),
        pytest.param([[1.0, np.inf], [0.0, 1.0]], r"`embeddings` has a zero or non-finite row", id="inf"),
    ],
)
def test_vendi_input_errors(embeddings: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        vendi_score(embeddings)


# ---------------------------------------------------------------------------------------------- clip_scores


def test_clip_scores_exact_values() -> None:
    images = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    texts = [[3.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [1.0, np.sqrt(3.0)]]  # cos 1, -1, 0, 1/2
    assert clip_scores(images, texts).tolist() == pytest.approx([2.5, 0.0, 0.0, 1.25])
    assert clip_scores(images, texts, w=1.0).tolist() == pytest.approx([1.0, 0.0, 0.0, 0.5])


@pytest.mark.parametrize(
    ("images", "texts", "match"),
    [
        pytest.param(
            np.ones((2, 3)),
            np.ones((3, 3)),
            r"`image_embeddings` and `text_embeddings` must have equal shapes, got \(2, 3\) and \(3, 3\)",
            id="shapes",
        ),
        pytest.param(np.ones(3), np.ones((1, 3)), r"`image_embeddings` must be an \(n, d\) matrix", id="1d-images"),
        pytest.param(np.ones((1, 3)), np.zeros((1, 3)), r"`text_embeddings` has a zero or non-finite row", id="zero"),
    ],
)
def test_clip_scores_input_errors(images: Any, texts: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        clip_scores(images, texts)


# ---------------------------------------------------------------------------------------------- CLIPScore

#: 64x64 (the tiny CLIP's input size) uint8 images: resize and centre crop are identities on both sides.
_SOLID = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)]
PROMPTS = [
    "blue sky",
    "!!!",
    "the the the",
    "a doctor",
    "A doctor performing surgery in a hospital.",
    "An insect resting on a flower in soft morning sunlight.",
]


def _pixels() -> list[NDArray[np.uint8]]:
    size = TINY_IMAGE_SIZE
    images = [np.full((size, size, 3), colour, dtype=np.uint8) for colour in _SOLID]
    ramp = np.linspace(0, 255, size).astype(np.uint8)
    images.append(np.stack([np.tile(ramp, (size, 1))] * 3, axis=-1))
    rng = np.random.default_rng(0)
    images += [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2)]
    return images


class _FeatureTensors(torch.nn.Module):
    """The CLIP model as torchmetrics 1.x expects it: ``get_*_features`` return tensors.

    transformers >= 5 returns a ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds the projected
    features; torchmetrics calls ``.norm`` on the return value directly. Only that unwrapping (and casting
    the float32 pixels to the model's dtype) is added; the weights and every computation are the model's.
    """

    def __init__(self, clip: Any) -> None:
        super().__init__()
        self.clip = clip
        self.config = clip.config

    def get_image_features(self, pixel_values: Any) -> Any:
        out = self.clip.get_image_features(pixel_values=pixel_values.to(self.clip.dtype))
        return getattr(out, "pooler_output", out)

    def get_text_features(self, input_ids: Any, attention_mask: Any) -> Any:
        out = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return getattr(out, "pooler_output", out)


@dataclass
class ClipSetup:
    path: Path
    processor: Any
    backend: ClipBackend


@pytest.fixture(scope="module")
def clip_setup(tmp_path_factory: pytest.TempPathFactory) -> ClipSetup:
    """The tiny random CLIP saved for torchmetrics, and our float64 backend over the same weights."""
    model, processor = build_tiny_hf_clip()
    # torchmetrics only loads a name or path containing "openai" (then CLIPModel/CLIPProcessor.from_pretrained)
    path = tmp_path_factory.mktemp("clip") / "openai-tiny-random-clip"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    backend = hf_clip_backend(model, processor, "tiny-hf", "cpu", torch.float64, batch_size=8)
    return ClipSetup(path, processor, backend)


@pytest.fixture(scope="module")
def reference(clip_setup: ClipSetup) -> Any:
    clip_score = pytest.importorskip("torchmetrics.multimodal.clip_score", reason="needs `pip install torchmetrics`")
    metric = clip_score.CLIPScore(model_name_or_path=str(clip_setup.path))
    # The model in float64 as our backend (not `set_dtype`, which would also cast the integer position ids);
    # torchmetrics keeps its running sum in float32, which costs ~1e-6 on the 0..100 scale.
    metric.model = _FeatureTensors(metric.model.double())
    return metric


def _tensor(pixels: NDArray[np.uint8]) -> Any:
    return torch.from_numpy(pixels).permute(2, 0, 1)  # (C, H, W) uint8, as torchmetrics documents


def _torchmetrics(metric: Any, pixels: list[NDArray[np.uint8]], prompts: list[str]) -> float:
    metric.reset()
    metric.update(torch.stack([_tensor(p) for p in pixels]), prompts)
    return float(metric.compute())


@pytest.fixture(scope="module")
def pairs(clip_setup: ClipSetup) -> tuple[list[NDArray[np.uint8]], list[str], NDArray[np.float64]]:
    """Every (image, prompt) pair, and its raw cosine under our backend."""
    grid = list(itertools.product(_pixels(), PROMPTS))
    pixels, prompts = [p for p, _ in grid], [t for _, t in grid]
    images = clip_setup.backend.encode_images([Image.fromarray(p) for p in pixels])
    texts = clip_setup.backend.encode_texts(prompts)
    cos = (images.astype(np.float64) * texts).sum(axis=1)
    return pixels, prompts, cos


def test_both_sides_see_the_same_pixels(clip_setup: ClipSetup, reference: Any) -> None:
    for pixels in _pixels():
        ours = clip_setup.processor.image_processor([Image.fromarray(pixels)], return_tensors="pt")["pixel_values"]
        theirs = reference.processor(images=[_tensor(pixels)], return_tensors="pt", padding=True)["pixel_values"]
        assert torch.equal(ours, theirs)


def test_clip_score_per_pair_matches_torchmetrics(clip_setup: ClipSetup, reference: Any, pairs: Any) -> None:
    pixels, prompts, cos = pairs
    # the random model gives mostly negative cosines: the comparison must cover both branches of max(cos, 0)
    assert (cos > 0).sum() >= 2, "no positive cosine: the comparison would be vacuous"
    assert (cos < 0).sum() >= 2
    images = clip_setup.backend.encode_images([Image.fromarray(p) for p in pixels])
    ours = clip_scores(images, clip_setup.backend.encode_texts(prompts))
    theirs = np.array([_torchmetrics(reference, [p], [t]) for p, t in zip(pixels, prompts, strict=True)])
    assert ours * TO_TORCHMETRICS == pytest.approx(theirs, abs=TOL)
    assert (theirs[cos > 0] > 0).all()
    assert (theirs[cos < 0] == 0).all()


def test_clip_score_batch_mean_matches_torchmetrics(clip_setup: ClipSetup, reference: Any, pairs: Any) -> None:
    pixels, prompts, cos = pairs
    keep = np.flatnonzero(cos > 0)  # torchmetrics clamps the batch mean, Hessel each pair: equal when all cos > 0
    assert len(keep) >= 2
    batch_pixels, batch_prompts = [pixels[i] for i in keep], [prompts[i] for i in keep]
    images = clip_setup.backend.encode_images([Image.fromarray(p) for p in batch_pixels])
    ours = clip_scores(images, clip_setup.backend.encode_texts(batch_prompts))
    assert (ours > 0).all()
    theirs = _torchmetrics(reference, batch_pixels, batch_prompts)
    assert float(ours.mean()) * TO_TORCHMETRICS == pytest.approx(theirs, abs=TOL)


def test_torchmetrics_clamps_after_averaging(clip_setup: ClipSetup, reference: Any, pairs: Any) -> None:
    """Not an error on either side, a definition: a mixed batch shows the two aggregations differ."""
    pixels, prompts, cos = pairs
    mixed = [int(np.argmax(cos)), int(np.argmin(cos))]
    theirs = _torchmetrics(reference, [pixels[i] for i in mixed], [prompts[i] for i in mixed])
    assert theirs == pytest.approx(max(100 * float(cos[mixed].mean()), 0.0), abs=TOL)
    hessel = float(np.mean(np.maximum(cos[mixed], 0))) * 100
    assert hessel > 0
    assert hessel != pytest.approx(theirs, abs=TOL)


def test_clip_annotator_records_match_torchmetrics(suite, clip_setup: ClipSetup, reference: Any, pairs: Any) -> None:  # type: ignore[no-untyped-def]
    pixels, prompts, cos = pairs
    chosen = list(np.flatnonzero(cos > 0)) + list(np.flatnonzero(cos <= 0)[:4])
    items = [
        AnnotationInput(f"nature_{k}", Image.fromarray(pixels[i]), prompts[i], seed=k) for k, i in enumerate(chosen)
    ]
    records = ClipAnnotator(suite, clip_setup.backend).annotate(items, "nature")
    ours = np.array([r.clip_score for r in records], dtype=np.float64)
    theirs = np.array([_torchmetrics(reference, [pixels[i]], [prompts[i]]) for i in chosen])
    assert ours * TO_TORCHMETRICS == pytest.approx(theirs, abs=TOL)
    assert (ours > 0).any()
    # the engine's clip_score is the mean of the records' CLIPScores, i.e. the mean of torchmetrics' per-pair values
    metrics = compute_category(suite, "nature", records, "strict").metrics
    assert metrics["clip_score"] == pytest.approx(float(theirs.mean()) / TO_TORCHMETRICS, abs=TOL / TO_TORCHMETRICS)
    embeddings = np.array([r.embedding for r in records], dtype=np.float64)
    assert metrics["vendi_embedding"] == pytest.approx(float(vendi.score_dual(embeddings)), abs=TOL)


# ---------------------------------------------------------------------------------------------- engine


def _records(n: int, *, embedding: bool, clip: bool, seed: int = 0) -> list[ImageRecord]:
    rng = np.random.default_rng(seed)
    groups = ["butterfly", "bee", "beetle", "unknown"]
    return [
        ImageRecord(
            image_id=f"nature_{i}",
            category="nature",
            labels={"insect": groups[i % len(groups)]},
            embedding=[float(v) for v in rng.normal(size=6)] if embedding else None,
            clip_score=float(rng.uniform(0, CLIPSCORE_WEIGHT)) if clip else None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("mode", ["paper", "strict"])
def test_engine_reports_embedding_metrics(suite, mode: str) -> None:  # type: ignore[no-untyped-def]
    records = _records(9, embedding=True, clip=True)
    result = compute_category(suite, "nature", records, mode)  # type: ignore[arg-type]
    embeddings = np.array([r.embedding for r in records])
    assert result.metrics["vendi_embedding"] == pytest.approx(vendi_score(embeddings), abs=1e-12)
    assert result.metrics["vendi_embedding"] == pytest.approx(float(vendi.score_dual(embeddings)), abs=TOL)
    assert result.metrics["clip_score"] == pytest.approx(float(np.mean([r.clip_score for r in records])), abs=1e-12)
    assert list(result.metrics)[-2:] == ["vendi_embedding", "clip_score"]  # after the suite's own metrics
    assert "vendi_embedding" not in result.reasons and "clip_score" not in result.reasons


@pytest.mark.parametrize("mode", ["paper", "strict"])
def test_engine_omits_embedding_metrics_without_embeddings(suite, mode: str) -> None:  # type: ignore[no-untyped-def]
    for records in (_records(9, embedding=False, clip=False), []):
        result = compute_category(suite, "nature", records, mode)  # type: ignore[arg-type]
        assert "vendi_embedding" not in result.metrics
        assert "clip_score" not in result.metrics


def test_engine_needs_every_record_to_carry_an_embedding(suite) -> None:  # type: ignore[no-untyped-def]
    records = _records(4, embedding=True, clip=False)
    records.append(_records(1, embedding=False, clip=False, seed=1)[0].model_copy(update={"image_id": "nature_x"}))
    assert "vendi_embedding" not in compute_category(suite, "nature", records, "strict").metrics


def test_engine_reports_one_without_the_other_as_unavailable(suite) -> None:  # type: ignore[no-untyped-def]
    only_embeddings = compute_category(suite, "nature", _records(5, embedding=True, clip=False), "strict")
    assert only_embeddings.metrics["vendi_embedding"] is not None
    assert only_embeddings.metrics["clip_score"] is None
    assert only_embeddings.reasons["clip_score"] == "the annotator computed no CLIPScore"
    only_clip = compute_category(suite, "nature", _records(5, embedding=False, clip=True), "strict")
    assert only_clip.metrics["clip_score"] is not None
    assert only_clip.metrics["vendi_embedding"] is None
    assert only_clip.reasons["vendi_embedding"] == "the annotator kept no image embeddings"
