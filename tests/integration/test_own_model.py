"""A model that is no hub checkpoint: conftest overrides, objects, callables, ``python:`` specs, entry
points, and precomputed labels without images (issue 22)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: a regression rule for doctor, so each test compares with its baseline (and reports a stale one)
POLICY = "suite: t2i-biasbench\ncategories:\n  doctor:\n    male_share: {regression: {absolute: 0.1}}\n"
INI = """
[pytest]
t2ibias_model = {model}
t2ibias_scorer = {scorer}
t2ibias_images_per_prompt = 4
t2ibias_steps = 2
t2ibias_thresholds = thresholds
"""
#: a module whose import says it was loaded: the ini's model and scorer, which an override must bypass
BOOM = """
from pathlib import Path
Path("LOADED").write_text("the ini's model or scorer was loaded")
raise RuntimeError("the ini's model was loaded")

def model():
    pass
"""
DOCTOR_TEST = """
import pytest
from pytest_t2ibias.assertions import assert_no_regression

@pytest.mark.t2ibias(category="doctor")
def test_doctor(t2ibias_result):
    assert_no_regression(t2ibias_result)
"""
#: an override that draws a marker (red or blue by seed) and a scorer that reads it back
MARKER_CONFTEST = """
import pytest
from PIL import Image

def draw(prompts, seeds):
    return [Image.new("RGB", (8, 8), (255, 0, 0) if s % 2 else (0, 0, 255)) for s in seeds]

def read(images, category):
    out = []
    for image in images:
        pixel = image.getpixel((0, 0))
        assert pixel in ((255, 0, 0), (0, 0, 255)), f"not the override's image: {pixel}"
        out.append("female" if pixel == (255, 0, 0) else "male")
    return out

@pytest.fixture(scope="session")
def t2ibias_generator():
    return draw

@pytest.fixture(scope="session")
def t2ibias_scorer():
    return read
"""


def _project(pytester: pytest.Pytester, model: str, scorer: str, **files: str) -> Path:
    pytester.makefile(".ini", pytest=INI.format(model=model, scorer=scorer))
    (pytester.path / "thresholds").mkdir()
    (pytester.path / "thresholds" / "t2i-biasbench.yaml").write_text(POLICY)
    pytester.makepyfile(boom=BOOM, test_bias=DOCTOR_TEST, **{k: textwrap.dedent(v) for k, v in files.items()})
    return pytester.path


def _baseline(root: Path) -> dict[str, object]:
    data = json.loads((root / "__baselines__" / "test_bias" / "test_doctor.json").read_text())
    assert isinstance(data, dict)
    return data


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--t2i-cache=cache", *args)


def test_conftest_override_is_generated_and_the_ini_model_never_loaded(pytester: pytest.Pytester) -> None:
    root = _project(pytester, "python:boom:model", "python:boom:model", conftest=MARKER_CONFTEST)
    approved = _run(pytester, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    assert not (root / "LOADED").exists()
    stored = _baseline(root)
    assert str(stored["model"]).startswith("callable:conftest.draw:")
    assert str(stored["scorer"]).startswith("callable:conftest.read:")
    # the override's marker: odd seeds red (female), even blue (male), as the scorer read them
    labels = [entry["gender"] for entry in stored["labels"].values()]  # type: ignore[attr-defined]
    assert sorted(set(labels)) == ["female", "male"] or len(labels) == 4
    rerun = _run(pytester)
    assert rerun.ret == pytest.ExitCode.OK, rerun.stdout.str()
    assert not (root / "LOADED").exists()


PIPELINE_CONFTEST = """
import os
import pytest
import torch
from pytest_t2ibias.generate.tiny import build_tiny_pipeline

@pytest.fixture(scope="session")
def t2ibias_generator():
    pipe = build_tiny_pipeline()  # a fine-tune in memory: the tiny model with a fused delta
    with torch.no_grad():
        pipe.unet.conv_in.weight[0, 0, 0, 0] += float(os.environ.get("DELTA", "0"))
    return pipe

@pytest.fixture(scope="session")
def t2ibias_scorer():
    return lambda images, category: ["female" if sum(im.getpixel((0, 0))) % 2 else "male" for im in images]
"""


def test_pipeline_object_fingerprint_one_changed_parameter_is_another_model(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(pytester, "python:boom:model", "python:boom:model", conftest=PIPELINE_CONFTEST)
    monkeypatch.setenv("DELTA", "0")
    approved = _run(pytester, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    model = str(_baseline(root)["model"])
    assert model.startswith("object:StableDiffusionPipeline:")
    images = sorted((root / "cache").rglob("*.png"))
    assert len(images) == 4
    again = _run(pytester)  # the same weights built again: the same fingerprint, every image from the cache
    assert again.ret == pytest.ExitCode.OK, again.stdout.str()
    again.stdout.re_match_lines([rf"model {model} \| .*"])
    assert sorted((root / "cache").rglob("*.png")) == images
    # one changed parameter: another model (its own images, none of the cached ones), compared with the
    # approved model's baseline as a regression test compares a candidate
    monkeypatch.setenv("DELTA", "0.001")
    changed = _run(pytester)
    changed.stdout.re_match_lines([r"model object:StableDiffusionPipeline:\w+ \| .*", r"baselines: 1 compared"])
    assert f"model {model} |" not in changed.stdout.str()
    assert len(list((root / "cache").rglob("*.png"))) == 8
    assert not (root / "LOADED").exists()


MODELS = """
from PIL import Image
from pytest_t2ibias.generate.objects import BatchCallableGenerator

def draw(prompts, seeds):
    return [Image.new("RGB", (8, 8), (255, 0, 0) if s % 2 else (0, 0, 255)) for s in seeds]

def make():
    return BatchCallableGenerator(draw, name="inhouse", version="7")

def read(images, category):
    return ["female" if im.getpixel((0, 0)) == (255, 0, 0) else "male" for im in images]
"""


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_t2ibias.cli", "evaluate", "--category", "doctor", "--images-per-prompt",
         "4", "--format", "json", "--no-progress", *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def test_python_specs_from_the_plugin_and_the_cli(pytester: pytest.Pytester) -> None:
    root = _project(pytester, "python:models:make", "python:models:read", models=MODELS)
    approved = _run(pytester, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    assert _baseline(root)["model"] == "callable:inhouse@7"
    out = _cli(root, "--model", "python:models:make", "--scorer", "python:models:read", "--cache", "cache")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["categories"]["doctor"]["model"] == "callable:inhouse@7"


def test_unknown_spec_lists_the_known_prefixes(pytester: pytest.Pytester) -> None:
    out = _cli(pytester.path, "--model", "nolab:v1", "--scorer", "tiny")
    assert out.returncode == 1
    assert "model spec 'nolab:v1' matches no known prefix; known: diffusers, python, synthetic, tiny" in out.stderr
    _project(pytester, "nolab:v1", "tiny")
    result = _run(pytester)
    result.stdout.fnmatch_lines(["*t2ibias: model spec 'nolab:v1' matches no known prefix; known:*"])


def _site(tmp: Path) -> Path:
    """A package installed the way pip installs one (a ``.dist-info`` with ``entry_points.txt``)."""
    site = tmp / "site"
    (site / "mylab").mkdir(parents=True)
    (site / "mylab" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from PIL import Image
            from pytest_t2ibias.generate.objects import BatchCallableGenerator

            def draw(prompts, seeds):
                return [Image.new("RGB", (8, 8), (255, 0, 0) if s % 2 else (0, 0, 255)) for s in seeds]

            def generator(arg, context):
                return BatchCallableGenerator(draw, name="mylab", version=arg)

            def scorer(arg, context):
                return lambda images, category: ["female" if im.getpixel((0, 0))[0] else "male" for im in images]
            """
        )
    )
    info = site / "mylab-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pytest_t2ibias.generators]\nmylab = mylab:generator\n\n[pytest_t2ibias.scorers]\nmylab = mylab:scorer\n"
    )
    return site


def test_entry_point_of_an_installed_package_from_the_plugin_and_the_cli(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = _site(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    root = _project(pytester, "mylab:v3", "mylab:human")
    approved = _run(pytester, "--t2i-update-baselines")
    assert approved.ret == pytest.ExitCode.OK, approved.stdout.str()
    assert _baseline(root)["model"] == "callable:mylab@v3"
    out = _cli(root, "--model", "mylab:v3", "--scorer", "mylab:x", "--no-cache", env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["categories"]["doctor"]["model"] == "callable:mylab@v3"
