"""The whole pipeline for a suite: plan -> generate (through the cache) -> annotate -> measure.

Used by the plugin and the ``t2ibias evaluate`` command alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.annotate.cache import RecordsCache, records_key
from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
from pytest_t2ibias.generate.cache import ImageCache
from pytest_t2ibias.generate.stage import GenerationResult, generate_images, plan_requests
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.results import RunResult
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode


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
) -> Evaluation:
    """Every metric (with its interval) of every (chosen) category of ``suite`` for ``generator``,
    labelled by ``annotator``.

    With a ``records_cache`` a category another process (or an earlier run) already scored with the same
    inputs is read instead of generated and scored again; while one process scores it, the others wait.
    """
    requests = plan_requests(suite, images_per_prompt, categories, seed)
    base_seed = suite.seed if seed is None else seed
    per_prompt = images_per_prompt or suite.images_per_prompt
    generation = GenerationResult()
    results: dict[str, CategoryResult] = {}
    for category in dict.fromkeys(r.category for r in requests):
        planned = [r for r in requests if r.category == category]
        key = records_key(
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
                records = _score(planned, generator, annotator, cache, progress, generation)
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
) -> list[ImageRecord]:
    """Generate (through the image cache) and label one category's images."""
    generated = generate_images(planned, generator, cache, progress)
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
    return annotator.annotate(items, planned[0].category)
