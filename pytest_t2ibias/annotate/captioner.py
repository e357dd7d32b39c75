"""Captioner annotator: an image-to-text model writes a caption, the suite's lexicons label it.

This is the paper's labelling route run live: any transformers image-to-text model (BLIP, GIT,
a vision encoder-decoder, ...) captions each image greedily, then :class:`CaptionAnnotator` labels the
caption in ``paper`` or ``strict`` mode. The record keeps the caption, so the lexical Vendi metric works.

Specs: ``tiny`` (a random-weight BLIP built in memory, offline), or a hub id / local folder saved with
``save_pretrained`` (``Salesforce/blip-image-captioning-large``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_t2ibias._hf import load_pretrained
from pytest_t2ibias.annotate.base import AnnotationInput, check_annotate_inputs
from pytest_t2ibias.annotate.captions import CaptionAnnotator, check_mode
from pytest_t2ibias.annotate.vqa import suite_texts, tiny_bert_tokenizer
from pytest_t2ibias.generate.diffusers_adapter import resolve_device, resolve_dtype
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode

if TYPE_CHECKING:
    import torch
    from PIL import Image

TINY_CAPTIONER_SEED = 0
TINY_CAPTIONER_IMAGE_SIZE = 64
#: Wider than BLIP's defaults (1e-10 for the vision tower) so the tiny captions depend on the image.
TINY_CAPTIONER_INIT_RANGE = 0.2


class ImageTextProcessor:
    """An image processor and a tokenizer behind one processor interface.

    Some captioners (a ViT + GPT-2 vision encoder-decoder) ship the two without a processor config, so
    ``AutoProcessor`` returns only one of them.
    """

    def __init__(self, image_processor: Any, tokenizer: Any) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer

    def __call__(
        self, images: Sequence[Image.Image], text: Sequence[str] | None = None, return_tensors: str = "pt"
    ) -> dict[str, Any]:
        batch = dict(self.image_processor(images=list(images), return_tensors=return_tensors))
        if text is not None:
            batch |= dict(self.tokenizer(list(text), padding=True, return_tensors=return_tensors))
        return batch

    def batch_decode(self, sequences: Any, **kwargs: Any) -> list[str]:
        out: list[str] = self.tokenizer.batch_decode(sequences, **kwargs)
        return out


class CaptionerAnnotator:
    """Greedy captions from an image-to-text model, labelled by the suite's lexicons.

    Args:
        suite: the suite whose lexicons label the captions.
        model: a transformers model with ``generate`` taking ``pixel_values`` (image-to-text).
        processor: its processor: ``processor(images=..., text=..., return_tensors="pt")`` and ``batch_decode``.
        model_id: names the model in :attr:`scorer_id` (hub id, folder, or ``tiny``).
        mode: ``paper`` or ``strict`` labelling (see :mod:`pytest_t2ibias.annotate.captions`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``auto`` (fp16 on CUDA, fp32 elsewhere), ``fp32``, ``fp16``, ``bf16`` or a ``torch.dtype``.
        batch_size: images per ``generate`` call; default 32 on CUDA, 8 elsewhere.
        max_new_tokens: caption length limit, in tokens.
        prompt: text the caption continues ("a photo of"), for models that take one; it is cut from the
            caption when the model echoes it verbatim.
    """

    def __init__(
        self,
        suite: Suite,
        model: Any,
        processor: Any,
        *,
        model_id: str = "custom",
        mode: Mode = "strict",
        device: str = "auto",
        dtype: str | torch.dtype = "auto",
        batch_size: int | None = None,
        max_new_tokens: int = 30,
        prompt: str | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        if max_new_tokens < 1:
            raise ValueError(f"`max_new_tokens` must be >= 1, got {max_new_tokens}")
        self.suite = suite
        self.mode = check_mode(mode)
        self.labeller = CaptionAnnotator(suite, self.mode)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device) if isinstance(dtype, str) else dtype
        self.batch_size = batch_size or (32 if self.device.startswith("cuda") else 8)
        #: images per forward pass (see :func:`pytest_t2ibias.pipeline.scoring_batch`)
        self.scoring_batch = self.batch_size
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.processor = processor
        self.scorer_id = f"captioner:{model_id}|mode={self.mode}|max_new_tokens={max_new_tokens}"
        if prompt is not None:
            self.scorer_id += f"|prompt={prompt!r}"

    def caption(self, images: Sequence[Image.Image], *, on_progress: Callable[[int], None] | None = None) -> list[str]:
        """Greedy captions, ``batch_size`` images per ``generate`` call; ``on_progress(k)`` after each
        call (``k`` images)."""
        import torch

        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = [image.convert("RGB") for image in images[start : start + self.batch_size]]
            text = None if self.prompt is None else [self.prompt] * len(batch)
            inputs = self.processor(images=batch, text=text, return_tensors="pt")
            inputs = {
                key: value.to(self.device, self.dtype) if value.is_floating_point() else value.to(self.device)
                for key, value in dict(inputs).items()
                if isinstance(value, torch.Tensor)
            }
            with torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
            prompt_ids = inputs.get("input_ids")
            # decoder-only VLMs return the prompt before the caption; BLIP rewrites its first token, so
            # its prompt stays (that is BLIP's documented output: "a photo of a cat ...")
            if prompt_ids is not None and out.shape[1] >= prompt_ids.shape[1]:
                if torch.equal(out[:, : prompt_ids.shape[1]], prompt_ids):
                    out = out[:, prompt_ids.shape[1] :]
            captions += [c.strip() for c in self.processor.batch_decode(out, skip_special_tokens=True)]
            if on_progress is not None:
                on_progress(len(batch))
        return captions

    def annotate(
        self,
        items: Sequence[AnnotationInput],
        category: str,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[ImageRecord]:
        """One record per item: the caption and its lexicon labels; seed, prompt and image path kept.
        ``on_progress(k)`` after each batch of ``k`` images is captioned."""
        check_annotate_inputs(items, category, list(self.suite.categories))
        captions = self.caption([item.image for item in items], on_progress=on_progress)
        return [
            self.labeller.annotate(
                caption, category, item.image_id, seed=item.seed, prompt=item.prompt, image_path=item.image_path
            )
            for item, caption in zip(items, captions, strict=True)
        ]

    @classmethod
    def from_spec(
        cls,
        name: str,
        suite: Suite,
        *,
        mode: Mode = "strict",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        local_files_only: bool = False,
        allow_pickle: bool = False,
        max_new_tokens: int = 30,
        prompt: str | None = None,
    ) -> CaptionerAnnotator:
        """The annotator for ``tiny``, a hub id or a local folder.

        Raises:
            ModelLoadError: the checkpoint is not available (offline, or the path does not exist).
            ValueError: a setting is invalid.
        """
        check_mode(mode)
        resolve_device(device)  # a bad setting fails before any loading
        if name == "tiny":
            model, processor = build_tiny_captioner(suite)
        else:
            model, processor = load_captioner(name, local_files_only, allow_pickle)
        return cls(
            suite,
            model,
            processor,
            model_id=name,
            mode=mode,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            prompt=prompt,
        )


def load_captioner(name: str, local_files_only: bool = False, allow_pickle: bool = False) -> tuple[Any, Any]:
    """An image-to-text model and its processor from a hub id or a local folder (safetensors weights only,
    unless ``allow_pickle``).

    Raises:
        ModelLoadError: the checkpoint is not available or holds no image-to-text model.
    """
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    model, processor = load_pretrained(
        name,
        "image-to-text model",
        [AutoModelForImageTextToText, AutoProcessor],
        local_files_only,
        allow_pickle=allow_pickle,
    )
    if not hasattr(processor, "image_processor") or not hasattr(processor, "batch_decode"):
        image_processor, tokenizer = load_pretrained(
            name, "image-to-text model", [AutoImageProcessor, AutoTokenizer], local_files_only
        )
        processor = ImageTextProcessor(image_processor, tokenizer)
    return model, processor


def build_tiny_captioner(suite: Suite) -> tuple[Any, Any]:
    """A random-weight ``BlipForConditionalGeneration`` (64x64 images) and its ``BlipProcessor``.

    Vision and text towers of hidden size 32, 2 layers, 4 heads, 8x8 patches; the BERT tokenizer's
    vocabulary is the special tokens (with BLIP's ``[DEC]`` start token) plus the suite's words, so the
    random captions are made of suite words and exercise the labelling. Identical on every call
    (weights drawn under :data:`TINY_CAPTIONER_SEED` in a forked RNG).
    """
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    tokenizer = tiny_bert_tokenizer(suite_texts(suite), extra_specials=("[DEC]",), bos_token="[DEC]")
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = BlipConfig(
        text_config={
            **tower,
            "vocab_size": len(tokenizer),
            "encoder_hidden_size": 32,
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "initializer_range": TINY_CAPTIONER_INIT_RANGE,
        },
        vision_config={
            **tower,
            "image_size": TINY_CAPTIONER_IMAGE_SIZE,
            "patch_size": 8,
            "initializer_range": TINY_CAPTIONER_INIT_RANGE,
        },
        projection_dim=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_CAPTIONER_SEED)
        model = BlipForConditionalGeneration(config)
    image_processor = BlipImageProcessor(size={"height": TINY_CAPTIONER_IMAGE_SIZE, "width": TINY_CAPTIONER_IMAGE_SIZE})
    return model.eval(), BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
