"""The whole pipeline for a suite: generate (through the cache) -> annotate -> measure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator
from pytest_t2ibias.generate.base import ImageGenerator
from pytest_t2ibias.generate.cache import ImageCache
from pytest_t2ibias.generate.stage import GenerationResult, generate_images, plan_requests
from pytest_t2ibias.metrics.engine import compute_category
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.results import SuiteResult
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode


@dataclass
class Evaluation:
    """Metrics per category, plus the records and images behind them."""

    result: SuiteResult
    records: dict[str, list[ImageRecord]] = field(default_factory=dict)
    generation: GenerationResult | None = None


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
) -> Evaluation:
    """Every metric of every (chosen) category of ``suite`` for ``generator``, labelled by ``annotator``."""
    requests = plan_requests(suite, images_per_prompt, categories, seed)
    generation = generate_images(requests, generator, cache, progress)
    results = {}
    records: dict[str, list[ImageRecord]] = {}
    for category in dict.fromkeys(r.category for r in requests):
        items = [
            AnnotationInput(
                image_id=image_id(g.request.category, g.request.prompt_index, g.request.image_index),
                image=g.image,
                prompt=g.request.prompt,
                seed=g.request.seed,
                image_path=str(g.path) if g.path else None,
            )
            for g in generation.by_category(category)
        ]
        records[category] = annotator.annotate(items, category)
        results[category] = compute_category(suite, category, records[category], mode)
    result = SuiteResult(
        model=generator.fingerprint, mode=mode, suite=suite.name, categories=results, scorer=annotator.scorer_id
    )
    return Evaluation(result, records, generation)
