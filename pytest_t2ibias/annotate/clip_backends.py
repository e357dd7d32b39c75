"""CLIP backends: open_clip and transformers, from a hub name, a local checkpoint, or built tiny.

A backend turns images and texts into unit-norm embeddings in batches, on the chosen device; fp16 on
CUDA by default. Specs: ``open_clip:ARCH/PRETRAINED`` (``open_clip:ViT-L-14/openai``, or a local
``.safetensors`` file as PRETRAINED), ``hf:MODEL_ID_OR_PATH`` (``hf:openai/clip-vit-large-patch14``),
``tiny`` / ``tiny-open_clip`` and ``tiny-hf`` (random weights, built in memory, offline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pytest_t2ibias._hf import CLIP_HUB_HINT, OPEN_CLIP_HINT, first_error_line, load_pretrained
from pytest_t2ibias.errors import ModelLoadError
from pytest_t2ibias.generate.diffusers_adapter import resolve_device, resolve_dtype

if TYPE_CHECKING:
    import torch
    from PIL import Image

TINY_CLIP_SEED = 0
TINY_IMAGE_SIZE = 64


def _unit(x: torch.Tensor) -> NDArray[np.float32]:
    x = x.float()
    out: NDArray[np.float32] = (x / x.norm(dim=-1, keepdim=True)).cpu().numpy().astype(np.float32)
    return out


class ClipBackend:
    """Batched CLIP encoders behind two functions: ``encode_images`` and ``encode_texts``."""

    def __init__(
        self,
        backend_id: str,
        image_fn: Callable[[torch.Tensor], torch.Tensor],
        text_fn: Callable[[list[str]], torch.Tensor],
        preprocess: Callable[[Sequence[Image.Image]], torch.Tensor],
        device: str,
        dtype: torch.dtype,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        self.id = backend_id
        self._image_fn = image_fn
        self._text_fn = text_fn
        self._preprocess = preprocess
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size

    def encode_images(
        self, images: Sequence[Image.Image], *, on_progress: Callable[[int], None] | None = None
    ) -> NDArray[np.float32]:
        """Unit-norm image embeddings, ``batch_size`` images per forward pass; ``on_progress(k)`` after
        each pass (``k`` images)."""
        import torch

        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            pixels = self._preprocess(batch)
            with torch.inference_mode():
                chunks.append(_unit(self._image_fn(pixels.to(self.device, self.dtype))))
            if on_progress is not None:
                on_progress(len(batch))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit-norm text embeddings."""
        import torch

        chunks = []
        for start in range(0, len(texts), 256):
            with torch.inference_mode():
                chunks.append(_unit(self._text_fn(list(texts[start : start + 256]))))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def _stack(transform: Callable[[Image.Image], torch.Tensor]) -> Callable[[Sequence[Image.Image]], torch.Tensor]:
    import torch

    return lambda images: torch.stack([transform(image.convert("RGB")) for image in images])


def open_clip_backend(
    model: Any, preprocess: Any, tokenizer: Any, backend_id: str, device: str, dtype: torch.dtype, batch_size: int
) -> ClipBackend:
    """Wrap an open_clip model, its eval transform and tokenizer (the model is moved in place)."""
    model = model.to(device=device, dtype=dtype).eval()
    return ClipBackend(
        backend_id,
        model.encode_image,
        lambda texts: model.encode_text(tokenizer(texts).to(device)),
        _stack(preprocess),
        device,
        dtype,
        batch_size,
    )


def hf_clip_backend(
    model: Any, processor: Any, backend_id: str, device: str, dtype: torch.dtype, batch_size: int
) -> ClipBackend:
    """Wrap a transformers ``CLIPModel`` and its ``CLIPProcessor`` (the model is moved in place)."""
    model = model.to(device=device, dtype=dtype).eval()

    def image_fn(pixels: torch.Tensor) -> torch.Tensor:
        out = model.get_image_features(pixel_values=pixels)
        return out if not hasattr(out, "pooler_output") else out.pooler_output

    def text_fn(texts: list[str]) -> torch.Tensor:
        tokens = processor.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(device)
        out = model.get_text_features(**tokens)
        return out if not hasattr(out, "pooler_output") else out.pooler_output

    def preprocess(images: Sequence[Image.Image]) -> torch.Tensor:
        batch = processor.image_processor([image.convert("RGB") for image in images], return_tensors="pt")
        return batch["pixel_values"]

    return ClipBackend(backend_id, image_fn, text_fn, preprocess, device, dtype, batch_size)


def build_tiny_open_clip() -> tuple[Any, Any, Any]:
    """A random-weight open_clip CLIP (64x64 images) with CLIP's real tokenizer, built offline."""
    import open_clip
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_CLIP_SEED)
        model = CLIP(
            embed_dim=32,
            vision_cfg=CLIPVisionCfg(layers=2, width=32, head_width=16, patch_size=8, image_size=TINY_IMAGE_SIZE),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
        )
    preprocess = open_clip.image_transform(TINY_IMAGE_SIZE, is_train=False)
    return model.eval(), preprocess, open_clip.tokenizer.SimpleTokenizer()


def build_tiny_hf_clip() -> tuple[Any, Any]:
    """A random-weight transformers ``CLIPModel`` + ``CLIPProcessor`` (64x64), built offline."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from pytest_t2ibias.generate.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 8,
        },
        projection_dim=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_CLIP_SEED)
        model = CLIPModel(config)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    )
    return model.eval(), CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def load_clip_backend(
    spec: str,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int | None = None,
    local_files_only: bool = False,
    allow_pickle: bool = False,
) -> ClipBackend:
    """A backend from a spec string (see the module docstring).

    Raises:
        ModelLoadError: the checkpoint is not available (offline, or the path does not exist).
        ModuleNotFoundError: the backend's package is not installed (names the pip package).
    """
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    size = batch_size or (64 if target.startswith("cuda") else 16)
    if spec in ("tiny", "tiny-open_clip"):
        model, preprocess, tokenizer = build_tiny_open_clip()
        return open_clip_backend(model, preprocess, tokenizer, "tiny-open_clip", target, torch_dtype, size)
    if spec == "tiny-hf":
        model, processor = build_tiny_hf_clip()
        return hf_clip_backend(model, processor, "tiny-hf", target, torch_dtype, size)
    if spec.startswith("open_clip:"):
        return _load_open_clip(spec, target, torch_dtype, size)
    if spec.startswith("hf:"):
        return _load_hf_clip(spec, target, torch_dtype, size, local_files_only, allow_pickle)
    raise ValueError(
        f"`scorer` must be 'tiny', 'tiny-hf', 'open_clip:ARCH/PRETRAINED' or 'hf:MODEL_ID_OR_PATH', got {spec!r}"
    )


def _load_open_clip(spec: str, device: str, dtype: torch.dtype, batch_size: int) -> ClipBackend:
    try:
        import open_clip
    except ModuleNotFoundError as err:  # pragma: no cover - a dependency
        raise ModuleNotFoundError("open_clip scorers need `pip install open_clip_torch`") from err
    name = spec.removeprefix("open_clip:")
    arch, _, pretrained = name.partition("/")
    if not arch or not pretrained:
        raise ValueError(f"`scorer` must look like 'open_clip:ARCH/PRETRAINED', got {spec!r}")
    local = Path(pretrained).expanduser()
    path_like = "/" in pretrained or "\\" in pretrained or pretrained.endswith((".safetensors", ".bin", ".pt"))
    if path_like and not local.is_file():
        raise ModelLoadError(f"open_clip checkpoint {pretrained!r} does not exist")
    if local.is_file() and local.suffix != ".safetensors":
        raise ModelLoadError(f"{local}: only .safetensors checkpoints are loaded (no pickle); convert it first")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=str(local) if local.is_file() else pretrained
        )
    except RuntimeError as err:
        raise ModelLoadError(f"cannot load open_clip model {name!r}: {first_error_line(err)}") from err
    except OSError as err:
        raise ModelLoadError(f"cannot load open_clip model {name!r}: {first_error_line(err)}{OPEN_CLIP_HINT}") from err
    return open_clip_backend(
        model, preprocess, open_clip.get_tokenizer(arch), f"open_clip:{name}", device, dtype, batch_size
    )


def _load_hf_clip(
    spec: str, device: str, dtype: torch.dtype, batch_size: int, local_files_only: bool, allow_pickle: bool = False
) -> ClipBackend:
    from transformers import CLIPModel, CLIPProcessor

    name = spec.removeprefix("hf:")
    model, processor = load_pretrained(
        name,
        "CLIP model",
        [CLIPModel, CLIPProcessor],
        local_files_only,
        hub_hint=CLIP_HUB_HINT,
        local_hint="",
        allow_pickle=allow_pickle,
    )
    return hf_clip_backend(model, processor, f"hf:{name}", device, dtype, batch_size)
