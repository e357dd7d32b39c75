"""One place that turns a model spec string into a generator.

``tiny`` (the offline random-weight pipeline), ``synthetic`` / ``synthetic:CONFIG.yaml`` (images with
known, configurable bias and a visible mark), or a diffusers hub id / local pipeline folder.
"""

from __future__ import annotations

from pytest_t2ibias.generate.base import ImageGenerator
from pytest_t2ibias.suites.schema import Suite


def load_generator(
    spec: str,
    suite: Suite,
    *,
    device: str = "auto",
    dtype: str = "auto",
    steps: int | None = None,
    guidance_scale: float | None = None,
    batch_size: int | None = None,
    local_files_only: bool = False,
    revision: str | None = None,
    allow_pickle: bool = False,
) -> ImageGenerator:
    """The generator a model spec names.

    ``allow_pickle`` lets a hub id or local folder load pickle (``.bin``) weights; by default only
    ``.safetensors`` weights load (the tiny and synthetic models have no weight files).
    """
    from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

    if spec == "tiny":
        return DiffusersGenerator.tiny(
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            batch_size=8 if batch_size is None else batch_size,
            device="cpu" if device == "auto" else device,
            dtype="fp32" if dtype == "auto" else dtype,  # type: ignore[arg-type]
        )
    if spec == "synthetic" or spec.startswith("synthetic:"):
        from pytest_t2ibias.generate.synthetic import SyntheticGenerator

        return SyntheticGenerator.from_spec(spec, suite)
    return DiffusersGenerator.from_pretrained(
        spec,
        device=device,
        dtype=dtype,  # type: ignore[arg-type]
        local_files_only=local_files_only,
        revision=revision,
        allow_pickle=allow_pickle,
        num_inference_steps=30 if steps is None else steps,
        guidance_scale=7.5 if guidance_scale is None else guidance_scale,
        batch_size=4 if batch_size is None else batch_size,
    )
