"""The model and scorer the settings name: the defaults of the ``t2ibias_generator`` and ``t2ibias_scorer``
fixtures, built through the registries (:mod:`pytest_t2ibias.registry`) on first use.

A conftest that overrides those fixtures never reaches this module: the session wraps what the override
returns (``T2IBiasSession.bind``). Nothing heavy is imported until a stage is built.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from pytest_t2ibias.masking import mask_credentials

if TYPE_CHECKING:
    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.registry import BuildContext
    from pytest_t2ibias.settings import Settings
    from pytest_t2ibias.suites.schema import Suite

#: The scorer of a real model when none is set.
DEFAULT_SCORER = "open_clip:ViT-L-14/openai"


def no_model_message(config: pytest.Config) -> str:
    """One line: which settings pytest read, and how to point it at the bias settings."""
    ini = f"ini file {config.inipath}" if config.inipath else f"no ini file (rootdir {config.rootpath})"
    return (
        f"t2ibias: no model configured: pytest read its settings from {ini}, which sets no t2ibias_model; "
        "run pytest on the folder of the bias tests (`pytest bias_tests`), set t2ibias_model there, or pass "
        "--t2i-model=...; to skip bias tests when no model is configured, set t2ibias_unconfigured = skip"
    )


def fail_masked(message: str) -> NoReturn:
    """``pytest.fail(message)`` with credentials masked (a location may be a URL with a password), and
    without the error being handled chained below it: its message may show the location unmasked."""
    raise pytest.fail.Exception(mask_credentials(message), pytrace=False) from None


def skip_at_test(reason: str) -> NoReturn:
    """Skip the running test, reported at the test's own location (as a skip mark is), not at this line
    of the plugin: ``-rs`` then says which test did not run."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


@dataclass(eq=False)
class SettingsStages:
    """The model and the scorer of the settings, each built once, on first use (a run of precomputed
    labels never loads the model)."""

    settings: Settings
    config: pytest.Config
    #: the settings' suite (a suite that cannot be loaded fails the asking test)
    suite: Callable[[], Suite]
    _generator: ImageGenerator | None = None
    _annotator: ImageAnnotator | None = None

    def context(self, suite: Suite | None = None) -> BuildContext:
        """What a registry factory is built with: the suite (the settings' by default) and the settings."""
        from pytest_t2ibias.registry import BuildContext

        return BuildContext(
            suite or self.suite(),
            mode=self.settings.mode,
            device=self.device(),
            dtype=self.settings.dtype,
            steps=self.settings.steps,
            batch_size=self.settings.batch_size,
            revision=self.settings.revision,
            allow_pickle=self.settings.allow_pickle,
            root=self.config.rootpath,
            strict_labels=self.settings.label_problems != "warn",
        )

    def generator(self) -> ImageGenerator:
        """The model of the settings, through the registry; no model fails (or skips) the asking test."""
        if self._generator is None:
            model = self.settings.model
            if model is None:
                if self.settings.unconfigured == "skip":
                    skip_at_test(no_model_message(self.config))
                pytest.fail(no_model_message(self.config), pytrace=False)
            from pytest_t2ibias.errors import T2IBiasError
            from pytest_t2ibias.generate.objects import LazyGenerator
            from pytest_t2ibias.registry import build_generator, cheap_fingerprint, generators, params_memo_key

            if model.startswith("synthetic:"):  # a config path, like every other path setting: from the rootdir
                config_path = Path(model.removeprefix("synthetic:"))
                if not config_path.is_absolute():
                    model = f"synthetic:{self.config.rootpath / config_path}"
            spec = model

            def load() -> ImageGenerator:
                try:
                    return build_generator(spec, self.context())
                except (T2IBiasError, ValueError) as err:
                    fail_masked(f"t2ibias: {err}")

            try:
                generators.resolve(spec)  # a spec no prefix matches fails now, before any scorer is built
                fingerprint = cheap_fingerprint(spec, self.settings.revision)
                memo_key = params_memo_key(spec, fingerprint, self.context())
                self._generator = LazyGenerator(load, fingerprint, memo_key=memo_key)
            except T2IBiasError as err:
                fail_masked(f"t2ibias: {err}")
        return self._generator

    def annotator(self) -> ImageAnnotator:
        """The scorer the settings name, for the settings' suite."""
        if self._annotator is None:
            self._annotator = self.build_annotator(self.suite())
        return self._annotator

    def is_own_annotator(self, scorer: object) -> bool:
        """``scorer`` is :meth:`annotator`'s (the ``t2ibias_scorer`` fixture was not overridden)."""
        return scorer is self._annotator

    def build_annotator(self, suite: Suite) -> ImageAnnotator:
        """The scorer the settings name, for ``suite``."""
        from pytest_t2ibias.annotate.objects import LazyAnnotator
        from pytest_t2ibias.errors import T2IBiasError
        from pytest_t2ibias.registry import build_annotator, scorer_memo_key

        model = self.settings.model or ""
        # a test model pairs with its test scorer (tiny with tiny, offline and in seconds); a real one with CLIP
        default = "synthetic" if model.startswith("synthetic") else "tiny" if model == "tiny" else DEFAULT_SCORER
        spec = self.settings.scorer or default
        context = self.context(suite)

        def load() -> ImageAnnotator:
            try:
                return build_annotator(spec, context)
            except (T2IBiasError, ValueError, FileNotFoundError) as err:
                fail_masked(f"t2ibias: {err}")

        memo_key = scorer_memo_key(spec, context)
        if memo_key is None:
            return load()
        return LazyAnnotator(load, memo_key=memo_key)  # built when an image needs labels

    def device(self) -> str:
        """The device setting; under pytest-xdist with ``auto`` / ``cuda``, one GPU per worker:
        ``cuda:<worker index mod device count>``."""
        from pytest_t2ibias.generate.sharding import xdist_device

        device = self.settings.device
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        if worker is None or device not in ("auto", "cuda"):
            return device
        import torch

        return xdist_device(device, worker, torch.cuda.device_count() if torch.cuda.is_available() else 0)


def cuda_available() -> bool:
    """Whether a CUDA device is usable. Without torch imported yet, a machine that surely has none (macOS;
    Linux without an NVIDIA device node or WSL's ``/dev/dxg``) answers without importing it: importing torch
    costs about 2 s, as much as a warm run of a bias test file, only to skip its GPU tests."""
    if "torch" not in sys.modules:
        if sys.platform == "darwin":
            return False
        if sys.platform.startswith("linux") and not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg")):
            return False
    import torch

    return bool(torch.cuda.is_available())
