"""The whole pipeline for a suite: plan -> generate (through the cache) -> annotate -> measure.

Used by the plugin and the ``t2ibias evaluate`` command alike.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.annotate.cache import RecordsCache, records_key
from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
from pytest_t2ibias.generate.cache import CACHE_FORMAT, ImageCache
from pytest_t2ibias.generate.stage import GenerationResult, generate_images, plan_requests
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.results import RunResult
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode

#: ``on_stage(stage, category, total)``: called as a stage of a category starts (``"generate"``, then
#: ``"score"``; ``total`` images); returns the callback that stage calls with ``k`` after ``k`` more of its
#: images are done, or ``None`` to not follow it. The pipeline knows the stages and their sizes, the
#: caller decides how (and whether) to show them: the library itself never prints.
StageProgress = Callable[[str, str, int], Callable[[int], None] | None]


@dataclass
class Evaluation:
    """Metrics per category (with intervals), plus the records and images behind them."""

    result: RunResult
    categories: dict[str, CategoryResult] = field(default_factory=dict)
    generation: GenerationResult | None = None

    @property
    def records(self) -> dict[str, list[ImageRecord]]:
        return {name: list(r.records) for name, r in self.categories.items()}


def image_id(category: str, prompt_index: int, image_index: int) -> str:
    """A readable image id that holds no prompt text."""
    return f"{category}_p{prompt_index}_i{image_index}"


def evaluate_suite(
    suite: Suite,
    generator: ImageGenerator,
    annotator: ImageAnnotator,
    *,
    mode: Mode = "strict",
    images_per_prompt: int | None = None,
    categories: Sequence[str] | None = None,
    cache: ImageCache | None = None,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
    records_cache: RecordsCache | None = None,
    on_stage: StageProgress | None = None,
) -> Evaluation:
    """Every metric (with its interval) of every (chosen) category of ``suite`` for ``generator``,
    labelled by ``annotator``.

    With a ``records_cache`` a category another process (or an earlier run) already scored with the same
    inputs is read instead of generated and scored again; while one process scores it, the others wait.

    Progress (both silent by default): ``progress(k)`` after ``k`` more images of the run are generated
    (or read with their records); ``on_stage`` (:data:`StageProgress`) per stage and category, scoring
    batch by batch when the annotator's ``annotate`` takes ``on_progress`` (else once, when it returns).
    A category read from ``records_cache`` runs no stage.
    """
    requests = plan_requests(suite, images_per_prompt, categories, seed)
    base_seed = suite.seed if seed is None else seed
    per_prompt = images_per_prompt or suite.images_per_prompt
    generation = GenerationResult()
    results: dict[str, CategoryResult] = {}
    for category in dict.fromkeys(r.category for r in requests):
        planned = [r for r in requests if r.category == category]
        key = records_key(
            image_cache=CACHE_FORMAT,  # records name cached images: a new image key layout is a new entry
            model=generator.fingerprint,
            params=generator.params,
            batch_size=generator.batch_size,
            scorer=annotator.scorer_id,
            suite=suite.fingerprint(),
            category=category,
            mode=mode,
            seed=base_seed,
            images_per_prompt=per_prompt,
        )
        with records_cache.lock(key) if records_cache is not None else contextlib.nullcontext():
            records = records_cache.load(key) if records_cache is not None else None
            if records is None:
                records = _score(planned, generator, annotator, cache, progress, generation, on_stage)
                if records_cache is not None:
                    records_cache.store(key, records)
            elif progress is not None:
                progress(len(planned))
        results[category] = measure(
            suite,
            category_data(suite, category, records, mode),
            model=generator.fingerprint,
            scorer=annotator.scorer_id,
            records=records,
            seed=base_seed,
            images_per_prompt=per_prompt,
        )
    return Evaluation(RunResult.from_results(results.values()), results, generation)


def _score(
    planned: Sequence[ImageRequest],
    generator: ImageGenerator,
    annotator: ImageAnnotator,
    cache: ImageCache | None,
    progress: Callable[[int], None] | None,
    generation: GenerationResult,
    on_stage: StageProgress | None = None,
) -> list[ImageRecord]:
    """Generate (through the image cache) and label one category's images."""
    category = planned[0].category
    on_generated = _both(progress, on_stage("generate", category, len(planned)) if on_stage else None)
    generated = generate_images(planned, generator, cache, on_generated)
    generation.images += generated.images
    generation.new += generated.new
    generation.cached += generated.cached
    items = [
        AnnotationInput(
            image_id=image_id(g.request.category, g.request.prompt_index, g.request.image_index),
            image=g.image,
            prompt=g.request.prompt,
            seed=g.request.seed,
            image_path=str(g.path) if g.path else None,
        )
        for g in generated.images
    ]
    # the score stage starts only now, so a bar for it opens when scoring does
    return _annotate(annotator, items, category, on_stage("score", category, len(items)) if on_stage else None)


def _both(first: Callable[[int], None] | None, second: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """One callback that calls both (either may be ``None``)."""
    if first is None or second is None:
        return first or second

    def call(k: int) -> None:
        first(k)
        second(k)

    return call


def _annotate(
    annotator: ImageAnnotator,
    items: Sequence[AnnotationInput],
    category: str,
    on_progress: Callable[[int], None] | None,
) -> list[ImageRecord]:
    """``annotator.annotate``, reporting progress batch by batch when the annotator can.

    ``on_progress`` is not part of :class:`ImageAnnotator` (an annotator written before it, or one too
    fast to need it, stays valid), so an annotator without it gets one report when it returns.
    """
    if on_progress is None:
        return annotator.annotate(items, category)
    annotate: Callable[..., list[ImageRecord]] = annotator.annotate
    if _takes_on_progress(annotate):
        return annotate(items, category, on_progress=on_progress)
    records = annotate(items, category)
    on_progress(len(items))
    return records


def _takes_on_progress(function: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a callable inspect cannot read (a C extension): assume the protocol alone
        return False
    return "on_progress" in parameters
