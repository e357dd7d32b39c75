"""A model given as a Python object (a fixture's return value, a ``python:`` spec) as an ImageGenerator.

Accepted: an :class:`~pytest_t2ibias.generate.base.ImageGenerator` (kept as it is), a diffusers
``DiffusionPipeline`` object (wrapped, never re-loaded: its device, dtype, scheduler, LoRA and adapters
are the user's), or a callable ``fn(prompts, seeds) -> images``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_t2ibias.errors import SettingsError
from pytest_t2ibias.generate.base import ImageGenerator, check_generate_inputs
from pytest_t2ibias.memo import memo_path as memo_path_of
from pytest_t2ibias.memo import plain, read_memo, settle

if TYPE_CHECKING:
    from PIL import Image

BatchFn = Callable[[Sequence[str], Sequence[int]], Sequence["Image.Image"]]


def is_pipeline(obj: object) -> bool:
    """A diffusers pipeline, told without importing diffusers (a plugin run may never need it)."""
    return any(c.__name__ == "DiffusionPipeline" and c.__module__.startswith("diffusers") for c in type(obj).__mro__)


def as_generator(
    obj: object,
    *,
    name: str | None = None,
    version: str | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    batch_size: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> ImageGenerator:
    """``obj`` as a generator (see the module docstring).

    ``name``/``version`` identify a pipeline or callable instead of hashing it (then change the version
    whenever the weights change). ``steps``, ``guidance_scale`` and ``batch_size`` apply to a pipeline
    (default 30, 7.5, 4); ``params`` are a callable's settings that change its pixels (they enter the
    cache key).

    Raises:
        SettingsError: ``obj`` is none of the accepted kinds.
    """
    # a lazy model first: the protocol's isinstance reads every member, which would build it
    if isinstance(obj, LazyGenerator) or isinstance(obj, ImageGenerator):
        return obj
    if is_pipeline(obj):
        from pytest_t2ibias.generate.diffusers_adapter import DiffusersGenerator
        from pytest_t2ibias.generate.fingerprint import object_fingerprint

        return DiffusersGenerator(
            obj,
            object_fingerprint(obj, name=name, version=version),
            num_inference_steps=30 if steps is None else steps,
            guidance_scale=7.5 if guidance_scale is None else guidance_scale,
            batch_size=4 if batch_size is None else batch_size,
        )
    if callable(obj):
        return BatchCallableGenerator(obj, name=name, version=version, params=params, batch_size=batch_size or 4)
    raise SettingsError(
        f"t2ibias_generator: a model must be an ImageGenerator, a diffusers DiffusionPipeline or a callable "
        f"fn(prompts, seeds) -> images, got {type(obj).__name__}"
    )


def callable_identity(fn: Callable[..., Any]) -> str:
    """``module.qualname:<hash of its code>``: editing the function's body changes it (and turns its
    baselines stale); a callable object without code is named by its class."""
    target = getattr(fn, "__func__", fn)
    call = vars(type(fn)).get("__call__")  # a callable object: the code of its class's __call__
    code = getattr(target, "__code__", None) or getattr(call, "__code__", None)
    where = getattr(target, "__qualname__", None) or type(fn).__qualname__
    module = getattr(target, "__module__", None) or type(fn).__module__
    digest = hashlib.blake2b(digest_size=8)
    if code is not None:
        _hash_code(code, digest)
    return f"{module}.{where}:{digest.hexdigest()}"


def _hash_code(code: Any, digest: Any) -> None:
    """Bytecode and constants, nested functions (lambdas, comprehensions) by their own code: a code
    object's repr holds its memory address, which changes from run to run."""
    digest.update(code.co_code)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _hash_code(const, digest)
        else:
            digest.update(repr(const).encode())


class BatchCallableGenerator:
    """A generator from ``fn(prompts, seeds) -> images`` (PIL images, one per prompt): an API model, a
    custom sampler, a model behind an internal endpoint.

    Its fingerprint is ``callable:<name>@<version>`` when named, else the function's module, name and a
    hash of its code plus ``params``. Image ``i`` must depend on ``prompts[i]`` and ``seeds[i]`` alone.

    Example:
        >>> from PIL import Image
        >>> def solid(prompts, seeds):
        ...     return [Image.new("RGB", (8, 8), (s % 256, 0, 0)) for s in seeds]
        >>> gen = BatchCallableGenerator(solid, name="solid", version="1")
        >>> gen.fingerprint, gen.generate(["a cat"], [7])[0].getpixel((0, 0))
        ('callable:solid@1', (7, 0, 0))
    """

    def __init__(
        self,
        fn: BatchFn,
        *,
        name: str | None = None,
        version: str | None = None,
        params: Mapping[str, Any] | None = None,
        batch_size: int = 4,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"`fn` must be callable as fn(prompts, seeds) -> images, got {type(fn).__name__}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
        self.fn = fn
        self.batch_size = batch_size
        self._params = dict(params or {})
        if name is not None:
            self.fingerprint = f"callable:{name}@{version or 'unversioned'}"
        else:
            self.fingerprint = f"callable:{callable_identity(fn)}"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        from PIL import Image

        check_generate_inputs(prompts, seeds)
        images = list(self.fn(list(prompts), [int(s) for s in seeds]))
        if len(images) != len(prompts):
            raise ValueError(f"{self.fingerprint}: returned {len(images)} images for {len(prompts)} prompts")
        bad = [type(image).__name__ for image in images if not isinstance(image, Image.Image)]
        if bad:
            raise TypeError(f"{self.fingerprint}: must return PIL images, got {bad[0]}")
        return [image.convert("RGB") for image in images]


class LazyGenerator:
    """A generator built on first use: a run whose labels are precomputed (or whose images and records are
    all cached) never loads the model. ``fingerprint`` is known up front when the spec tells it cheaply (a
    hub id, a local folder, ``tiny``); anything else builds the model.

    ``params`` and ``batch_size`` enter every cache key, and only the built model knows them. With a
    ``memo_key`` (every input that decides them: spec, fingerprint, settings, library versions; see
    :func:`pytest_t2ibias.registry.params_memo_key`) they are remembered in a small JSON memo the first time
    the model is built, so a warm rerun reads its images and records without building it. A memo that
    disagrees with the model once built is corrected, and the run fails (its cache reads used wrong keys).
    """

    def __init__(
        self,
        load: Callable[[], ImageGenerator],
        fingerprint: str | None = None,
        *,
        memo_key: str | None = None,
        memo_path: Path | None = None,
    ) -> None:
        self._load = load
        self._fingerprint = fingerprint
        self._model: ImageGenerator | None = None
        self._failure: BaseException | None = None
        self._memo_key = memo_key
        self._memo_path = memo_path or memo_path_of("generator-params.json")
        self._remembered = _valid(read_memo(self._memo_path).get(memo_key)) if memo_key else None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> ImageGenerator:
        if self._model is None:
            if self._failure is not None:  # one load per run: the next test fails at once, with the same line
                raise self._failure.with_traceback(None)
            try:
                self._model = self._load()
            except BaseException as err:
                if not isinstance(err, KeyboardInterrupt | SystemExit):
                    self._failure = err
                raise
            if self._memo_key is not None:
                self._check_memo(self._model)
        return self._model

    def _check_memo(self, model: ImageGenerator) -> None:
        known = {"params": plain(dict(model.params)), "batch_size": model.batch_size}
        stale = settle(self._memo_path, self._memo_key, self._remembered, known)  # type: ignore[arg-type]
        self._remembered = known
        if stale is not None:
            raise SettingsError(
                f"the remembered settings of model {self.fingerprint} in {self._memo_path} were not the model's "
                f"(remembered {stale}, the model has {known}); corrected: run again"
            )

    @property
    def fingerprint(self) -> str:
        return self._fingerprint if self._fingerprint is not None else self.model.fingerprint

    @fingerprint.setter
    def fingerprint(self, value: str) -> None:
        self._fingerprint = value

    @property
    def batch_size(self) -> int:
        if self._model is None and self._remembered is not None:
            return int(self._remembered["batch_size"])
        return self.model.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.model.batch_size = value

    @property
    def params(self) -> dict[str, Any]:
        if self._model is None and self._remembered is not None:
            return dict(self._remembered["params"])
        return self.model.params

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        return self.model.generate(prompts, seeds)

    def __getattr__(self, name: str) -> Any:  # e.g. `.pipeline` of the model it stands for
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model, name)


def _valid(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """A memo entry with ``params`` (an object) and ``batch_size`` (a positive int), else None."""
    if entry is None or not isinstance(entry.get("params"), dict):
        return None
    size = entry.get("batch_size")
    return entry if isinstance(size, int) and not isinstance(size, bool) and size >= 1 else None
