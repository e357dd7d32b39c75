"""Generator adapter for any diffusers text-to-image pipeline: hub id, local path, or the tiny model."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_t2ibias._hf import PIPELINE_HUB_HINT, checkpoint_source, first_error_line, hub_offline
from pytest_t2ibias.errors import ModelLoadError as ModelLoadError  # re-exported: it was defined here
from pytest_t2ibias.generate.base import check_generate_inputs
from pytest_t2ibias.generate.fingerprint import hub_fingerprint, local_fingerprint
from pytest_t2ibias.generate.tiny import TINY_GUIDANCE, TINY_SIZE, TINY_STEPS, build_tiny_pipeline, tiny_fingerprint

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image

Dtype = Literal["auto", "fp32", "fp16", "bf16"]
DTYPES = ("auto", "fp32", "fp16", "bf16")

#: Weight files that are Python pickles: loading one can run arbitrary code.
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
#: How to get out of a pickle-only checkpoint; appended to the errors that name one.
PICKLE_HINT = (
    "convert it to safetensors (DiffusionPipeline.from_pretrained(path, use_safetensors=False)"
    ".save_pretrained(path, safe_serialization=True)) or, if you trust the files, pass allow_pickle=True"
)


def pickle_only_folders(root: Path) -> list[str]:
    """Component folders of a local pipeline that hold pickle weights and no ``.safetensors``.

    The components are the ones ``model_index.json`` names (other files, such as an original
    single-file ``.ckpt`` kept beside the pipeline, are never loaded); without a readable index, every
    folder under ``root`` (``.`` for the root itself) is checked.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("unet/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.safetensors"):
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     _ = (root / name).write_bytes(b"")
        >>> pickle_only_folders(root)
        ['unet']
    """
    try:
        index = json.loads((root / "model_index.json").read_text(encoding="utf-8"))
        components: list[str] | None = [
            name for name, value in index.items() if not name.startswith("_") and isinstance(value, list)
        ]
    except (OSError, ValueError, AttributeError):
        components = None
    folders: dict[Path, set[str]] = {}
    for path in root.rglob("*"):
        if path.suffix not in PICKLE_SUFFIXES and path.suffix != ".safetensors":
            continue
        relative = path.relative_to(root)
        if components is not None and (len(relative.parts) < 2 or relative.parts[0] not in components):
            continue
        if path.is_file():
            folders.setdefault(path.parent, set()).add("safetensors" if path.suffix == ".safetensors" else "pickle")
    return sorted(folder.relative_to(root).as_posix() for folder, kinds in folders.items() if kinds == {"pickle"})


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else is checked and kept."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r} but no CUDA device is available; use 'cpu' or 'auto'")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise ValueError(f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto`` -> fp16 on CUDA, fp32 elsewhere (fp16 on CPU is slow and inexact)."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {list(DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


class DiffusersGenerator:
    """Images from a diffusers pipeline, one CPU ``torch.Generator`` per image.

    Use :meth:`from_pretrained` for a hub id or a local checkpoint, :meth:`tiny` for the built-in
    offline model, or the constructor for a pipeline you built yourself (then give a fingerprint that
    changes when its weights do).
    """

    def __init__(
        self,
        pipeline: DiffusionPipeline,
        fingerprint: str,
        *,
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        height: int | None = None,
        width: int | None = None,
        batch_size: int = 4,
        negative_prompt: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        if num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}")
        self.pipeline = pipeline
        self.fingerprint = fingerprint
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.height = height
        self.width = width
        self.batch_size = batch_size
        self.negative_prompt = negative_prompt
        with contextlib.suppress(AttributeError):
            pipeline.set_progress_bar_config(disable=True)

    @property
    def params(self) -> dict[str, Any]:
        """Every setting that changes the pixels; it enters the cache key."""
        pipe = self.pipeline
        dtype = getattr(pipe, "dtype", None)
        return {
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "height": self.height,
            "width": self.width,
            "negative_prompt": self.negative_prompt,
            "scheduler": type(pipe.scheduler).__name__ if hasattr(pipe, "scheduler") else None,
            "scheduler_config": (
                {k: v for k, v in pipe.scheduler.config.items() if not k.startswith("_")}
                if hasattr(pipe, "scheduler")
                else None
            ),
            "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
            "device_type": str(getattr(pipe, "device", "cpu")).split(":")[0],
        }

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        """One image per (prompt, seed); image i depends on ``seeds[i]`` alone."""
        import torch

        check_generate_inputs(prompts, seeds)
        images: list[Image.Image] = []
        for start in range(0, len(prompts), self.batch_size):
            batch_prompts = list(prompts[start : start + self.batch_size])
            generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds[start : start + self.batch_size]]
            kwargs: dict[str, Any] = {
                "num_inference_steps": self.num_inference_steps,
                "guidance_scale": self.guidance_scale,
                "generator": generators,
                "output_type": "pil",
            }
            if self.height is not None:
                kwargs["height"] = self.height
            if self.width is not None:
                kwargs["width"] = self.width
            if self.negative_prompt is not None:
                kwargs["negative_prompt"] = [self.negative_prompt] * len(batch_prompts)
            with torch.inference_mode():
                out = self.pipeline(batch_prompts, **kwargs)
            images.extend(image.convert("RGB") for image in out.images)
        return images

    @classmethod
    def tiny(
        cls,
        *,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        batch_size: int = 8,
        device: str = "cpu",
        dtype: Dtype = "fp32",
    ) -> DiffusersGenerator:
        """The built-in offline model (random weights): for tests and examples, never for real runs.

        It runs on the CPU in fp32 unless told otherwise: its pixels are the reference the project's
        own tests compare against.
        """
        import torch

        target = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, target)
        pipeline = build_tiny_pipeline()
        if target != "cpu" or torch_dtype != torch.float32:  # built on the CPU in fp32 already
            pipeline = pipeline.to(target, torch_dtype)
        return cls(
            pipeline,
            tiny_fingerprint(),
            num_inference_steps=TINY_STEPS if num_inference_steps is None else num_inference_steps,
            guidance_scale=TINY_GUIDANCE if guidance_scale is None else guidance_scale,
            height=TINY_SIZE,
            width=TINY_SIZE,
            batch_size=batch_size,
        )

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        *,
        device: str = "auto",
        dtype: Dtype = "auto",
        revision: str | None = None,
        local_files_only: bool = False,
        scheduler: str | None = None,
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        height: int | None = None,
        width: int | None = None,
        batch_size: int = 4,
        enable_model_cpu_offload: bool = False,
        enable_attention_slicing: bool = False,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
    ) -> DiffusersGenerator:
        """Load a pipeline from a hub id or a local directory.

        Args:
            model: hub id (``stable-diffusion-v1-5/stable-diffusion-v1-5``) or a local pipeline folder.
            device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
            dtype: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16`` or ``bf16``.
            scheduler: a diffusers scheduler class name (``DPMSolverMultistepScheduler``) to swap in.
            enable_model_cpu_offload: move submodules to the GPU only while they run (small GPUs).
            trust_remote_code: off by default; custom pipeline code runs only when you say so.
            allow_pickle: off by default: weights load from ``.safetensors`` files only, for a local
                folder and a hub id alike (a pickled ``.bin`` can run code when loaded). Turn it on
                for a checkpoint you trust that ships pickle weights only.

        Raises:
            ModelLoadError: the path does not exist, the hub cannot be reached, the folder is not a
                diffusers pipeline, or its weights are pickle files only (without ``allow_pickle``);
                the message names the model.
        """
        from diffusers import DiffusionPipeline

        target = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, target)
        text = str(model)
        source, is_local = checkpoint_source(text, "model")
        if is_local and not allow_pickle and (unsafe := pickle_only_folders(Path(source))):
            raise ModelLoadError(
                f"cannot load local folder {text!r}: pickle weights only (no .safetensors) in {', '.join(unsafe)}; "
                f"{PICKLE_HINT}"
            )
        try:
            with warnings.catch_warnings():
                # newer diffusers renamed `torch_dtype` to `dtype`; the old name works on every version
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = DiffusionPipeline.from_pretrained(
                    source,
                    torch_dtype=torch_dtype,
                    revision=revision,
                    local_files_only=local_files_only or is_local or hub_offline(),
                    use_safetensors=None if allow_pickle else True,
                    trust_remote_code=trust_remote_code,
                )
        except (OSError, ValueError) as err:
            where = "local folder" if is_local else "hub model"
            hint = "" if is_local else PIPELINE_HUB_HINT
            if not allow_pickle and "safetensors" in str(err):
                hint = f" (safetensors weights only, by default: if it ships pickle .bin weights, {PICKLE_HINT})"
            raise ModelLoadError(f"cannot load {where} {text!r}: {first_error_line(err)}{hint}") from err
        if scheduler is not None:
            import diffusers

            scheduler_cls: Any = getattr(diffusers, scheduler, None)
            if not (isinstance(scheduler_cls, type) and issubclass(scheduler_cls, diffusers.SchedulerMixin)):
                raise ValueError(f"`scheduler` must be a diffusers scheduler class name, got {scheduler!r}")
            pipe.scheduler = getattr(scheduler_cls, "from_config")(pipe.scheduler.config)  # noqa: B009 (untyped)
        if enable_attention_slicing:
            pipe.enable_attention_slicing()
        if enable_model_cpu_offload and target.startswith("cuda"):
            pipe.enable_model_cpu_offload(device=target)
        else:
            pipe = pipe.to(target)
        fingerprint = local_fingerprint(Path(source)) if is_local else hub_fingerprint(text, revision)
        return cls(
            pipe,
            fingerprint,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            height=height,
            width=width,
            batch_size=batch_size,
        )
