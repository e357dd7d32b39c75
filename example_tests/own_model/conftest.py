"""Bias tests of a model that is no hub checkpoint: a pipeline object built in memory.

This folder's tests get the model from the `t2ibias_generator` fixture below instead of pytest.ini's
`t2ibias_model` (which the rest of example_tests uses): a conftest override wins, as pytest users expect,
and everything downstream follows it (the image cache key, the baselines' model id, the report).

The "fine-tune" is the built-in tiny pipeline with a random low-rank delta fused into its attention
weights, the way `pipe.fuse_lora()` leaves a LoRA: the pipeline object is handed over as it is (its
device, dtype, scheduler and fused weights kept) and fingerprinted from its configs and a hash of its
parameters, so changing one weight makes another model (see docs/own-model.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_t2ibias.annotate.base import ImageAnnotator
from pytest_t2ibias.judge.policy import Policy, load_policy
from pytest_t2ibias.suites import Suite, load_suite

HERE = Path(__file__).parent
#: the rank and scale of the fused delta (a LoRA's `r` and `alpha / r`)
RANK, SCALE = 2, 0.5


@pytest.fixture(scope="session")
def t2ibias_generator():  # type: ignore[no-untyped-def]
    """The model of this folder's tests: the tiny pipeline with a fused random "LoRA" delta."""
    import torch

    from pytest_t2ibias.generate.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline()
    generator = torch.Generator("cpu").manual_seed(22)  # the same delta every run: the same model
    with torch.no_grad():
        for name, module in pipe.unet.named_modules():
            if name.endswith(("attn2.to_q", "attn2.to_k", "attn2.to_v")):
                out_features, in_features = module.weight.shape
                down = torch.randn(RANK, in_features, generator=generator) / in_features**0.5
                up = torch.randn(out_features, RANK, generator=generator) / RANK**0.5
                module.weight += SCALE * up @ down  # W + scale * B A, as fuse_lora() leaves it
    return pipe  # a DiffusionPipeline object: wrapped, never re-loaded


@pytest.fixture(scope="session")
def t2ibias_suite() -> Suite:
    """This folder's suite: the built-in occupations (its tests name it in their markers too)."""
    return load_suite("occupations")


@pytest.fixture(scope="session")
def t2ibias_scorer(t2ibias_suite: Suite) -> ImageAnnotator:
    """pytest.ini's scorer (tiny, fp32), for this folder's suite."""
    from pytest_t2ibias.annotate.factory import load_annotator

    return load_annotator("tiny", t2ibias_suite, dtype="fp32")


@pytest.fixture(scope="session")
def t2ibias_policy(t2ibias_suite: Suite) -> Policy:
    """This folder's own gate: regressions of the fine-tune against its approved baselines fail."""
    return load_policy(HERE / "thresholds" / "occupations.yaml", t2ibias_suite)
