"""Open registries of models and scorers: a spec string -> an object, by its prefix.

``--t2i-model`` and ``--t2i-scorer`` (and the CLI's ``--model`` / ``--scorer``) are specs ``NAME`` or
``NAME:ARG``. Each registry maps a name to a factory ``factory(arg, context) -> object``; the object is
then made a generator (:func:`~pytest_t2ibias.generate.objects.as_generator`) or an annotator
(:func:`~pytest_t2ibias.annotate.objects.as_annotator`). Three ways in, one mechanism:

* the built-ins (``tiny``, ``synthetic``, diffusers hub ids and folders; ``open_clip:``, ``hf:``,
  ``vqa:``, ``captioner:``, ``labels:``) register here with :meth:`Registry.register`;
* ``python:package.module:attr``: the attribute, imported with importlib (never ``eval``). A function or
  class with no required parameter is a factory (called, with ``context=`` when it takes it); anything
  else is the model or scorer itself. It is code the user chose to run, as a conftest is;
* installed packages: entry points of the groups ``pytest_t2ibias.generators`` and
  ``pytest_t2ibias.scorers``; the entry point's name is the prefix, its object a factory
  ``factory(arg, context)`` (``mylab = mylab.t2i:factory`` makes ``--t2i-model=mylab:v3`` work).

A spec that matches none is one error listing the known prefixes.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_t2ibias.errors import SettingsError

if TYPE_CHECKING:
    from pytest_t2ibias.annotate.base import ImageAnnotator
    from pytest_t2ibias.generate.base import ImageGenerator
    from pytest_t2ibias.suites.schema import Suite

GENERATOR_GROUP = "pytest_t2ibias.generators"
SCORER_GROUP = "pytest_t2ibias.scorers"


@dataclass(frozen=True)
class BuildContext:
    """What a factory may use: the run's suite and settings (``None``: the factory's default)."""

    suite: Suite
    mode: str = "strict"
    device: str = "auto"
    dtype: str = "auto"
    steps: int | None = None
    guidance_scale: float | None = None
    batch_size: int | None = None
    local_files_only: bool = False
    revision: str | None = None
    allow_pickle: bool = False
    #: the folder ``python:`` modules and relative paths resolve from (the rootdir, the CLI's cwd)
    root: Path | None = None
    #: precomputed labels: False turns missing/unplanned/invalid labels into counted warnings
    strict_labels: bool = True


Factory = Callable[[str, BuildContext], Any]


class Registry:
    """Factories by spec prefix; entry points of ``group`` join on first use."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._factories: dict[str, Factory] = {}
        #: the prefixes whose factories return a finished generator / annotator (no wrapping needed)
        self._finished: set[str] = set()
        #: the last resort for a spec no prefix names (a diffusers hub id or folder), and when it applies
        self.fallback: tuple[Callable[[str], bool], Factory] | None = None
        self._entry_points_loaded = False

    def register(self, prefix: str, factory: Factory, *, finished: bool = False) -> None:
        """Make ``PREFIX`` and ``PREFIX:ARG`` specs call ``factory(ARG, context)``; ``finished``: it returns
        a generator / annotator as it is to be used (the built-ins), never wrapped."""
        if not prefix or ":" in prefix:
            raise ValueError(f"`prefix` must be a name without ':', got {prefix!r}")
        self._factories[prefix] = factory
        if finished:
            self._finished.add(prefix)

    def finished(self, spec: str) -> bool:
        """Whether ``spec``'s factory returns a finished object (a built-in, or the fallback)."""
        name = spec.partition(":")[0]
        return name in self._finished or (name not in self._factories and self.fallback is not None)

    def prefixes(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def build(self, spec: str, context: BuildContext) -> Any:
        """The object ``spec`` names (not yet made a generator or annotator).

        Raises:
            SettingsError: no prefix matches, or a ``python:`` target cannot be imported.
        """
        return self.resolve(spec)(context)

    def resolve(self, spec: str) -> Callable[[BuildContext], Any]:
        """``spec``'s factory, bound to its argument (nothing built yet)."""
        name, _, arg = spec.partition(":")
        factory = self._factories.get(name)
        if factory is None:
            self._load_entry_points()
            factory = self._factories.get(name)
        if factory is None and self.fallback is not None and self.fallback[0](spec):
            factory, arg = self.fallback[1], spec
        if factory is None:
            raise SettingsError(
                f"{self.kind} spec {spec!r} matches no known prefix; known: {', '.join(self.prefixes())}"
                + (" (or a diffusers hub id ORG/NAME or a local pipeline folder)" if self.fallback else "")
                + f"; packages add more through the {self.group!r} entry point group"
            )
        bound = factory
        return lambda context: bound(arg, context)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for point in entry_points(group=self.group):
            if point.name in self._factories or ":" in point.name:
                continue  # a built-in is never shadowed by an installed package

            def factory(arg: str, context: BuildContext, point: Any = point) -> Any:
                try:
                    target = point.load()
                except Exception as err:  # a broken package: one line naming it
                    raise SettingsError(
                        f"{self.kind} {point.name!r}: entry point {point.value!r} of {self.group!r} does not "
                        f"load: {type(err).__name__}: {err}"
                    ) from None
                return target(arg, context)

            self._factories[point.name] = factory


def load_python_target(target: str, context: BuildContext, kind: str = "model") -> Any:
    """``package.module:attr`` (attr may be dotted): a factory's product, or the attribute itself.

    The rootdir (the CLI: the working directory) is put on ``sys.path`` first, so a module beside the
    tests imports as a conftest would.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SettingsError(f"{kind} spec 'python:{target}': must be python:package.module:attr")
    if context.root is not None and str(context.root) not in sys.path:
        sys.path.insert(0, str(context.root))
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise SettingsError(f"{kind} spec 'python:{target}': cannot import module {module_name!r}: {err}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SettingsError(f"{kind} spec 'python:{target}': module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
        return obj  # an object: the model or scorer itself
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return obj
    required = [
        p
        for p in parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "context"
    ]
    if required:
        return obj  # e.g. fn(prompts, seeds): the model itself
    factory: Any = obj
    return factory(context=context) if "context" in parameters else factory()


# -- the two registries and their built-ins ----------------------------------------------------------------

generators = Registry("model", GENERATOR_GROUP)
scorers = Registry("scorer", SCORER_GROUP)


def build_generator(spec: str, context: BuildContext) -> ImageGenerator:
    """The generator ``spec`` names (see the module docstring)."""
    from pytest_t2ibias.generate.objects import as_generator

    built = generators.build(spec, context)
    if generators.finished(spec):
        return built  # type: ignore[no-any-return]
    return as_generator(built, steps=context.steps, batch_size=context.batch_size)


def build_annotator(spec: str, context: BuildContext) -> ImageAnnotator:
    """The annotator ``spec`` names (see the module docstring)."""
    from pytest_t2ibias.annotate.objects import as_annotator

    built = scorers.build(spec, context)
    return built if scorers.finished(spec) else as_annotator(built, context.suite)


def cheap_fingerprint(spec: str, revision: str | None = None, root: Path | None = None) -> str | None:
    """A model spec's fingerprint when it is known without loading the model (``tiny``, a hub id, a local
    folder), else None: a run that generates nothing then loads nothing."""
    from pytest_t2ibias.generate.fingerprint import hub_fingerprint, local_fingerprint

    if spec == "tiny":
        from pytest_t2ibias.generate.tiny import tiny_fingerprint

        return tiny_fingerprint()
    if spec.partition(":")[0] in generators.prefixes() or not _diffusers_spec(spec):
        return None
    path = Path(spec)
    if path.is_dir():
        try:
            return local_fingerprint(path)
        except FileNotFoundError:
            return None
    model_id = hub_model_id(spec)  # the one test of "a hub id", shared with the start-up check
    return hub_fingerprint(model_id, revision) if model_id is not None else None


def params_memo_key(spec: str, fingerprint: str | None, context: BuildContext) -> str | None:
    """What decides a model's ``params`` and ``batch_size`` without loading it: the spec, its fingerprint
    (weights and configs, the scheduler's included), the settings that reach the adapter and the versions
    of the libraries that run it; None when the fingerprint needs the model. The key of
    :class:`~pytest_t2ibias.generate.objects.LazyGenerator`'s memo."""
    if fingerprint is None:
        return None
    device = context.device
    if device == "auto" and spec != "tiny":  # params name the device type; the tiny model runs on the CPU
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return _memo_key(
        kind="generator",
        spec=spec,
        fingerprint=fingerprint,
        device=device,
        dtype=context.dtype,
        steps=context.steps,
        guidance_scale=context.guidance_scale,
        batch_size=context.batch_size,
        revision=context.revision,
        allow_pickle=context.allow_pickle,
    )


#: Scorer prefixes whose scorer id is told by the spec and the settings (the key of the scorer id memo):
#: CLIP, VQA and captioner models. Precomputed labels and synthetic scorers build in no time; a
#: ``python:`` scorer is the user's object.
LAZY_SCORERS = ("tiny", "tiny-open_clip", "tiny-hf", "open_clip", "hf", "vqa", "captioner")


def scorer_memo_key(spec: str, context: BuildContext) -> str | None:
    """What decides a scorer's ``scorer_id`` and ``scoring_batch`` without loading it (the spec, the
    settings, the suite, library versions); None for a scorer that is not built lazily."""
    if spec.partition(":")[0] not in LAZY_SCORERS:
        return None
    return _memo_key(
        kind="scorer",
        spec=spec,
        suite=context.suite.fingerprint(),
        mode=context.mode,
        device=context.device,
        dtype=context.dtype,
        batch_size=context.batch_size,
        local_files_only=context.local_files_only,
        allow_pickle=context.allow_pickle,
    )


def _memo_key(**parts: object) -> str:
    import hashlib
    import json
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    libraries = ("pytest-t2ibias", "diffusers", "torch", "transformers", "open_clip_torch")
    blob = {**parts, "versions": {name: installed(name) for name in libraries}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def hub_model_id(spec: str) -> str | None:
    """``spec`` when it names a model on the hub (``ORG/NAME``: no registry prefix, not a path that exists
    or is written as one), else None."""
    if ":" in spec or "/" not in spec or spec.startswith((".", "/", "~")) or Path(spec).exists():
        return None
    return spec


def _diffusers_spec(spec: str) -> bool:
    """A hub id (``ORG/NAME``, no ``:``) or an existing local folder."""
    return Path(spec).exists() or ("/" in spec and ":" not in spec) or spec.startswith((".", "/", "~"))


def _tiny(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

    if arg:
        raise SettingsError(f"model spec 'tiny:{arg}': tiny takes no argument")
    return DiffusersGenerator.tiny(
        num_inference_steps=c.steps,
        guidance_scale=c.guidance_scale,
        batch_size=8 if c.batch_size is None else c.batch_size,
        device="cpu" if c.device == "auto" else c.device,
        dtype="fp32" if c.dtype == "auto" else c.dtype,  # type: ignore[arg-type]
    )


def _synthetic_model(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.generate.synthetic import SyntheticGenerator

    return SyntheticGenerator.from_spec(f"synthetic:{arg}" if arg else "synthetic", c.suite)


def _diffusers(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator

    return DiffusersGenerator.from_pretrained(
        arg,
        device=c.device,
        dtype=c.dtype,  # type: ignore[arg-type]
        local_files_only=c.local_files_only,
        revision=c.revision,
        allow_pickle=c.allow_pickle,
        num_inference_steps=30 if c.steps is None else c.steps,
        guidance_scale=7.5 if c.guidance_scale is None else c.guidance_scale,
        batch_size=4 if c.batch_size is None else c.batch_size,
    )


def _python(kind: str) -> Factory:
    return lambda arg, c: load_python_target(arg, c, kind)


generators.register("tiny", _tiny, finished=True)
generators.register("synthetic", _synthetic_model, finished=True)
generators.register("diffusers", _diffusers, finished=True)  # explicit: diffusers:ID_OR_FOLDER
generators.register("python", _python("model"))
generators.fallback = (_diffusers_spec, _diffusers)


def _synthetic_scorer(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.annotate.synthetic import SyntheticAnnotator

    return SyntheticAnnotator.from_spec(f"synthetic:{arg}" if arg else "synthetic", c.suite)


def _labels(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.annotate.precomputed import PrecomputedLabels

    path = Path(arg)
    if c.root is not None and not path.is_absolute() and not path.exists():
        path = c.root / path  # like every other path setting: from the rootdir
    return PrecomputedLabels.from_file(path, c.suite, strict=c.strict_labels)


def _vqa(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.annotate.vqa import VqaAnnotator

    return VqaAnnotator.from_spec(
        arg,
        c.suite,
        device=c.device,
        dtype=c.dtype,
        batch_size=c.batch_size,
        local_files_only=c.local_files_only,
        allow_pickle=c.allow_pickle,
    )


def _captioner(arg: str, c: BuildContext) -> Any:
    from pytest_t2ibias.annotate.captioner import CaptionerAnnotator

    return CaptionerAnnotator.from_spec(
        arg,
        c.suite,
        mode=c.mode,  # type: ignore[arg-type]
        device=c.device,
        dtype=c.dtype,
        batch_size=c.batch_size,
        local_files_only=c.local_files_only,
        allow_pickle=c.allow_pickle,
    )


def _clip(prefix: str) -> Factory:
    def factory(arg: str, c: BuildContext) -> Any:
        from pytest_t2ibias.annotate.clip import ClipAnnotator, ClipThresholds
        from pytest_t2ibias.annotate.clip_backends import load_clip_backend

        spec = f"{prefix}:{arg}" if arg else prefix
        backend = load_clip_backend(
            spec,
            device=c.device,
            dtype=c.dtype,
            batch_size=c.batch_size,
            local_files_only=c.local_files_only,
            allow_pickle=c.allow_pickle,
        )
        # the tiny CLIP's random weights cannot tell a person from an empty scene: no person check for it,
        # so plumbing tests and examples get labels (a real scorer keeps the default threshold)
        thresholds = ClipThresholds(person_threshold=float("-inf")) if prefix.startswith("tiny") else None
        return ClipAnnotator(c.suite, backend, thresholds)

    return factory


scorers.register("synthetic", _synthetic_scorer, finished=True)
scorers.register("labels", _labels, finished=True)
scorers.register("vqa", _vqa, finished=True)
scorers.register("captioner", _captioner, finished=True)
scorers.register("python", _python("scorer"))
for _prefix in ("tiny", "tiny-open_clip", "tiny-hf", "open_clip", "hf"):
    scorers.register(_prefix, _clip(_prefix), finished=True)
