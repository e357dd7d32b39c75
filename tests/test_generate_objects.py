"""Models and scorers as objects: wrapping, fingerprints of objects, and the open registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from pytest_t2ibias.annotate.objects import CallableAnnotator, as_annotator
from pytest_t2ibias.errors import SettingsError, T2IBiasError
from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator
from pytest_t2ibias.generate.fingerprint import object_fingerprint
from pytest_t2ibias.generate.objects import BatchCallableGenerator, LazyGenerator, as_generator
from pytest_t2ibias.generate.tiny import build_tiny_pipeline
from pytest_t2ibias.registry import BuildContext, Registry, build_annotator, build_generator, load_python_target
from pytest_t2ibias.suites import load_suite

SUITE = load_suite("t2i-biasbench")
FINGERPRINT = (
    "from pytest_t2ibias.generate.tiny import build_tiny_pipeline\n"
    "from pytest_t2ibias.generate.fingerprint import object_fingerprint\n"
    "print(object_fingerprint(build_tiny_pipeline()))"
)


def test_same_weights_built_twice_give_one_fingerprint_across_processes() -> None:
    here = object_fingerprint(build_tiny_pipeline())
    there = subprocess.run([sys.executable, "-c", FINGERPRINT], capture_output=True, text=True, check=True)
    assert here.startswith("object:StableDiffusionPipeline:")
    assert there.stdout.strip() == here


def test_one_changed_parameter_changes_the_fingerprint() -> None:
    pipe = build_tiny_pipeline()
    before = object_fingerprint(pipe)
    changed = build_tiny_pipeline()
    with torch.no_grad():
        changed.vae.decoder.conv_out.bias[0] += 1e-6
    assert object_fingerprint(changed) != before


def test_a_changed_scheduler_config_changes_the_fingerprint() -> None:
    from diffusers import EulerDiscreteScheduler

    pipe = build_tiny_pipeline()
    before = object_fingerprint(pipe)
    other = build_tiny_pipeline()
    other.scheduler = EulerDiscreteScheduler.from_config(other.scheduler.config)
    assert object_fingerprint(other) != before


def test_a_named_object_is_fingerprinted_by_its_name_and_version() -> None:
    assert object_fingerprint(torch.nn.Linear(2, 2), name="mylab", version="3") == "object:mylab@3"


def test_a_pipeline_object_is_wrapped_never_reloaded() -> None:
    pipe = build_tiny_pipeline()
    generator = as_generator(pipe, steps=2, batch_size=2)
    assert isinstance(generator, DiffusersGenerator)
    assert generator.pipeline is pipe  # the user's device, dtype, scheduler and adapters, as they are
    assert generator.fingerprint == object_fingerprint(pipe)
    assert (generator.num_inference_steps, generator.batch_size) == (2, 2)


def test_a_callable_is_a_generator_named_by_its_code() -> None:
    def draw(prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        return [Image.new("RGB", (4, 4), (s % 256, 0, 0)) for s in seeds]

    generator = as_generator(draw)
    assert isinstance(generator, BatchCallableGenerator)
    assert generator.fingerprint.startswith("callable:test_generate_objects.")
    assert generator.generate(["a"], [3])[0].getpixel((0, 0)) == (3, 0, 0)
    with pytest.raises(SettingsError, match="a model must be an ImageGenerator, a diffusers DiffusionPipeline"):
        as_generator(42)


def test_a_callable_scorer_checks_its_labels() -> None:
    from pytest_t2ibias.annotate.base import AnnotationInput

    item = AnnotationInput("d0", Image.new("RGB", (4, 4)), "a doctor")
    scorer = as_annotator(lambda images, category: ["nonbinary"], SUITE)
    assert isinstance(scorer, CallableAnnotator)
    with pytest.raises(ValueError, match=r"label 'nonbinary' is not a group of 'gender'"):
        scorer.annotate([item], "doctor")


def test_a_lazy_generator_is_built_only_when_it_must_draw() -> None:
    built: list[int] = []

    def load() -> BatchCallableGenerator:
        built.append(1)
        return BatchCallableGenerator(lambda p, s: [Image.new("RGB", (2, 2))] * len(p), name="x", version="1")

    lazy = LazyGenerator(load, "hub:org/x@main")
    assert as_generator(lazy) is lazy and lazy.fingerprint == "hub:org/x@main" and not built
    assert len(lazy.generate(["a"], [1])) == 1 and built == [1]


def test_python_target_factory_or_object(tmp_path: Path) -> None:
    (tmp_path / "inhouse_models.py").write_text(
        "def factory():\n    return 'built'\n\n"
        "def with_context(context):\n    return context.suite.name\n\n"
        "def draw(prompts, seeds):\n    return []\n"
    )
    context = BuildContext(SUITE, root=tmp_path)
    assert load_python_target("inhouse_models:factory", context) == "built"
    assert load_python_target("inhouse_models:with_context", context) == "t2i-biasbench"
    assert callable(load_python_target("inhouse_models:draw", context))
    with pytest.raises(T2IBiasError, match=r"cannot import module 'nowhere_at_all'"):
        load_python_target("nowhere_at_all:x", context)
    with pytest.raises(T2IBiasError, match=r"has no attribute 'missing'"):
        load_python_target("inhouse_models:missing", context)


def test_registries_build_the_builtins_and_list_prefixes_on_a_miss() -> None:
    context = BuildContext(SUITE)
    assert build_generator("synthetic", context).fingerprint.startswith("synthetic")
    assert build_annotator("synthetic", context).scorer_id.startswith("synthetic")
    with pytest.raises(SettingsError, match=r"scorer spec 'nolab:x' matches no known prefix; known: captioner, hf, "):
        build_annotator("nolab:x", context)


def test_register_a_prefix() -> None:
    registry = Registry("model", "pytest_t2ibias.test-nothing")
    registry.register("mylab", lambda arg, context: f"mylab {arg}")
    assert registry.build("mylab:v3", BuildContext(SUITE)) == "mylab v3"
    with pytest.raises(ValueError, match="without ':'"):
        registry.register("a:b", lambda arg, context: None)
