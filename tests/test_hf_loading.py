"""One Hugging Face loading helper (pytest_t2ibias._hf) for the generator and every annotator; one error tree."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_t2ibias import _hf, errors
from pytest_t2ibias._hf import checkpoint_source, first_error_line, hub_offline, load_pretrained
from pytest_t2ibias.errors import ModelLoadError, T2IBiasError
from pytest_t2ibias.suites.schema import Suite

#: A Windows-style path: on POSIX it is not a file, and it must not be sent to the hub as a model id.
BACKSLASH = r"models\no-such-model"


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a loader was called for a path that does not exist")


# --- checkpoint_source and the loaders' entry points ------------------------------------------------------


@pytest.mark.parametrize("name", [BACKSLASH, r"C:\models\sd", "/no/such/dir", "./missing", "~/missing", "a/b/c"])
def test_a_missing_path_like_name_is_an_error(name: str) -> None:
    with pytest.raises(ModelLoadError, match=f"^thing path {re.escape(repr(name))} does not exist$"):
        checkpoint_source(name, "thing")


def test_a_hub_id_and_a_local_folder(tmp_path: Path) -> None:
    assert checkpoint_source("org/model", "thing") == ("org/model", False)
    assert checkpoint_source("model", "thing") == ("model", False)
    assert checkpoint_source(str(tmp_path), "thing") == (str(tmp_path), True)


def test_the_generator_checks_backslash_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers

    from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", _refuse)
    with pytest.raises(ModelLoadError, match=f"^model path {re.escape(repr(BACKSLASH))} does not exist$"):
        DiffusersGenerator.from_pretrained(BACKSLASH, device="cpu")


def test_the_vqa_annotator_checks_backslash_paths(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from pytest_t2ibias.annotate.vqa import VqaAnnotator

    monkeypatch.setattr(transformers.AutoModelForVisualQuestionAnswering, "from_pretrained", _refuse)
    with pytest.raises(ModelLoadError, match=f"^VQA model path {re.escape(repr(BACKSLASH))} does not exist$"):
        VqaAnnotator.from_spec(BACKSLASH, suite, device="cpu")


def test_the_captioner_checks_backslash_paths(suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from pytest_t2ibias.annotate.captioner import CaptionerAnnotator

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", _refuse)
    with pytest.raises(ModelLoadError, match=f"^image-to-text model path {re.escape(repr(BACKSLASH))} does not exist$"):
        CaptionerAnnotator.from_spec(BACKSLASH, suite, device="cpu")


def test_the_hf_clip_backend_checks_backslash_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from pytest_t2ibias.annotate.clip_backends import load_clip_backend

    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained", _refuse)
    with pytest.raises(ModelLoadError, match=f"^CLIP model path {re.escape(repr(BACKSLASH))} does not exist$"):
        load_clip_backend(f"hf:{BACKSLASH}", device="cpu")


def test_the_open_clip_backend_checks_backslash_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip

    from pytest_t2ibias.annotate.clip_backends import load_clip_backend

    monkeypatch.setattr(open_clip, "create_model_and_transforms", _refuse)
    with pytest.raises(ModelLoadError, match=re.escape(f"open_clip checkpoint {BACKSLASH!r} does not exist")):
        load_clip_backend(f"open_clip:ViT-B-32/{BACKSLASH}", device="cpu")


# --- offline mode, read when loading -----------------------------------------------------------------------


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No offline variable set, and huggingface_hub's import-time reading of them says online."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return monkeypatch


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_hub_offline_honours_a_variable_set_late(online: pytest.MonkeyPatch, variable: str, value: str) -> None:
    assert not hub_offline()
    online.setenv(variable, value)
    assert hub_offline()


@pytest.mark.parametrize("value", ["0", "", "false", "no"])
def test_hub_offline_ignores_false_values(online: pytest.MonkeyPatch, value: str) -> None:
    online.setenv("HF_HUB_OFFLINE", value)
    assert not hub_offline()


def test_hub_offline_follows_huggingface_hub(online: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    online.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert hub_offline()


class _FakeLoader:
    def __init__(self, calls: list[tuple[str, bool]], fail: BaseException | None = None) -> None:
        self.calls = calls
        self.fail = fail

    def from_pretrained(self, source: str, *, local_files_only: bool) -> str:
        self.calls.append((source, local_files_only))
        if self.fail is not None:
            raise self.fail
        return "loaded"


def test_load_pretrained_stays_off_the_hub_when_offline_is_set_late(online: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool]] = []
    assert load_pretrained("org/model", "thing", [_FakeLoader(calls)]) == ["loaded"]
    online.setenv("HF_HUB_OFFLINE", "1")
    assert load_pretrained("org/model", "thing", [_FakeLoader(calls), _FakeLoader(calls)]) == ["loaded", "loaded"]
    assert calls == [("org/model", False), ("org/model", True), ("org/model", True)]


def test_the_generator_stays_off_the_hub_when_offline_is_set_late(online: pytest.MonkeyPatch) -> None:
    import diffusers

    from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

    seen: list[object] = []

    def fake(name: str, **kwargs: object) -> None:
        seen.append(kwargs["local_files_only"])
        raise OSError("fake hub")

    online.setattr(diffusers.DiffusionPipeline, "from_pretrained", fake)
    online.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"^cannot load hub model 'org/model': fake hub \(offline\?"):
        DiffusersGenerator.from_pretrained("org/model", device="cpu", dtype="fp32")
    assert seen == [True]


@pytest.mark.parametrize(
    ("local", "hint"), [(False, _hf.HUB_HINT), (True, _hf.LOCAL_FOLDER_HINT)], ids=["hub", "local"]
)
def test_load_pretrained_errors_are_one_line_with_a_hint(tmp_path: Path, local: bool, hint: str) -> None:
    name = str(tmp_path) if local else "org/model"
    loader = _FakeLoader([], OSError("no config.json here\nand a long second line"))
    with pytest.raises(ModelLoadError) as info:
        load_pretrained(name, "thing", [loader])
    assert str(info.value) == f"cannot load thing {name!r}: no config.json here{hint}"
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    ("err", "line"),
    [(OSError("first\nsecond"), "first"), (ValueError("  \n"), "ValueError"), (KeyError("k"), "'k'")],
)
def test_first_error_line(err: BaseException, line: str) -> None:
    assert first_error_line(err) == line


def test_the_old_import_paths_give_the_shared_helpers() -> None:
    from pytest_t2ibias.annotate import vqa

    assert vqa.hub_offline is hub_offline
    assert vqa.checkpoint_source is checkpoint_source
    assert vqa.load_pretrained is load_pretrained


def test_importing_the_helpers_imports_no_model_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_t2ibias._hf; "
        "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'open_clip') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- one error tree ---------------------------------------------------------------------------------------


#: errors.py also holds the package's warnings and ``MetricUnavailable`` (a metric function's "no value
#: here", which the engine reports as null: not a user error)
NOT_USER_ERRORS = {"MetricUnavailable"}
ERROR_CLASSES = [
    getattr(errors, name)
    for name in errors.__all__
    if name not in NOT_USER_ERRORS and not issubclass(getattr(errors, name), Warning)
]
WARNING_CLASSES = [getattr(errors, name) for name in errors.__all__ if issubclass(getattr(errors, name), Warning)]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_is_a_t2ibias_error_and_a_value_error(cls: type[Exception]) -> None:
    assert issubclass(cls, T2IBiasError)
    assert issubclass(cls, ValueError)


@pytest.mark.parametrize("cls", WARNING_CLASSES, ids=lambda cls: cls.__name__)
def test_every_warning_is_a_user_warning(cls: type[Warning]) -> None:
    assert issubclass(cls, UserWarning) and not issubclass(cls, T2IBiasError)


def test_errors_holds_errors_and_warnings_only() -> None:
    assert len(ERROR_CLASSES) + len(WARNING_CLASSES) + len(NOT_USER_ERRORS) == len(errors.__all__)
    assert not issubclass(errors.MetricUnavailable, T2IBiasError)


def test_a_model_load_error_is_also_a_runtime_error() -> None:
    assert issubclass(ModelLoadError, RuntimeError)
    with pytest.raises(RuntimeError):
        raise ModelLoadError("x")


def _old_paths() -> list[tuple[str, Callable[[], type[Exception]]]]:
    def get(module: str, name: str) -> Callable[[], type[Exception]]:
        def load() -> type[Exception]:
            import importlib

            cls: type[Exception] = getattr(importlib.import_module(module), name)
            return cls

        return load

    return [
        ("SuiteError", get("pytest_t2ibias.suites.loader", "SuiteError")),
        ("SuiteError", get("pytest_t2ibias.suites", "SuiteError")),
        ("CaptionFileError", get("pytest_t2ibias.replay", "CaptionFileError")),
        ("LabelsFileError", get("pytest_t2ibias.annotate.precomputed", "LabelsFileError")),
        ("SyntheticConfigError", get("pytest_t2ibias.generate.synthetic", "SyntheticConfigError")),
        ("MarkError", get("pytest_t2ibias.generate.synthetic", "MarkError")),
        ("ModelLoadError", get("pytest_t2ibias.generate.diffusers_adapter", "ModelLoadError")),
        # defined in these modules until issue 25 moved them to errors.py
        ("CacheLocationError", get("pytest_t2ibias.cli", "CacheLocationError")),
        ("ScorerCardError", get("pytest_t2ibias.metrics.scorer_card", "ScorerCardError")),
        ("StaleScorerCardError", get("pytest_t2ibias.metrics.scorer_card", "StaleScorerCardError")),
        ("CacheStorageError", get("pytest_t2ibias.generate.storage", "CacheStorageError")),
        ("ShardError", get("pytest_t2ibias.generate.sharding", "ShardError")),
        ("GeneratedImageError", get("pytest_t2ibias.generate.validate", "GeneratedImageError")),
        ("LockTimeoutError", get("pytest_t2ibias.generate.cache", "LockTimeoutError")),
        ("BaselineWriteError", get("pytest_t2ibias.snapshot", "BaselineWriteError")),
        ("MetricUnavailable", get("pytest_t2ibias.metrics.data", "MetricUnavailable")),
        ("T2IBiasWarning", get("pytest_t2ibias.assertions", "T2IBiasWarning")),
        ("CacheCorruptionWarning", get("pytest_t2ibias.generate.cache", "CacheCorruptionWarning")),
        ("LockWaitWarning", get("pytest_t2ibias.generate.stage", "LockWaitWarning")),
        ("RecordsCacheWarning", get("pytest_t2ibias.annotate.cache", "RecordsCacheWarning")),
    ]


@pytest.mark.parametrize(("name", "load"), _old_paths(), ids=[f"{n}-{i}" for i, (n, _) in enumerate(_old_paths())])
def test_old_import_paths_give_the_same_class(name: str, load: Callable[[], type[Exception]]) -> None:
    assert load() is getattr(errors, name)
