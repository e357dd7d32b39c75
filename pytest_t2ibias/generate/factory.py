"""One place that turns a model spec string into a generator: the registry of
:mod:`pytest_t2ibias.registry` (built-ins ``tiny``, ``synthetic`` / ``synthetic:CONFIG.yaml``, diffusers
hub ids and local folders; ``python:module:attr``; installed entry points).
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
    from pathlib import Path

    from pytest_t2ibias.registry import BuildContext, build_generator

    context = BuildContext(
        suite,
        device=device,
        dtype=dtype,
        steps=steps,
        guidance_scale=guidance_scale,
        batch_size=batch_size,
        local_files_only=local_files_only,
        revision=revision,
        allow_pickle=allow_pickle,
        root=Path.cwd(),
    )
    return build_generator(spec, context)
