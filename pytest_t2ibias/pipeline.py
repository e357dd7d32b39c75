"""The whole pipeline for a suite: plan -> generate (through the cache) -> annotate -> measure.

Used by the plugin and the ``t2ibias evaluate`` command alike.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pytest_t2ibias.annotate.base import AnnotationInput, ImageAnnotator, ImageRef, LabelLookup
from pytest_t2ibias.annotate.cache import RecordsCache, records_key
from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
from pytest_t2ibias.generate.cache import CACHE_FORMAT, ImageCache
from pytest_t2ibias.generate.sharding import RankInfo, error_payload, gather_json, shard, shard_payload
from pytest_t2ibias.generate.stage import GenerationResult, generate_images, plan_blocks, plan_requests
from pytest_t2ibias.metrics.engine import category_data
from pytest_t2ibias.metrics.result import CategoryResult, measure
from pytest_t2ibias.metrics.scorer_card import ScorerCard
from pytest_t2ibias.records import ImageRecord
from pytest_t2ibias.results import RunResult
from pytest_t2ibias.suites.schema import Suite
from pytest_t2ibias.types import Mode

#: ``on_stage(stage, category, total)``: called as a stage of a category starts (``"generate"``, then
#: ``"score"``; ``total`` images); returns the callback that stage calls with ``k`` after ``k`` more of its
#: images are done, or ``None`` to not follow it. The pipeline knows the stages and their sizes, the
#: caller decides how (and whether) to show them: the library itself never prints.
StageProgress = Callable[[str, str, int], Callable[[int], None] | None]

U = TypeVar("U")
P = TypeVar("P")
R = TypeVar("R")


@dataclass
class Evaluation:
    """Metrics per category (with intervals), plus the records and images behind them."""

    result: RunResult
    categories: dict[str, CategoryResult] = field(default_factory=dict)
    generation: GenerationResult | None = None
    #: problems of precomputed labels let through as warnings (one line per kind)
    warnings: list[str] = field(default_factory=list)

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
    overlap: bool = True,
    scorer_card: ScorerCard | None = None,
) -> Evaluation:
    """Every metric (with its interval) of every (chosen) category of ``suite`` for ``generator``,
    labelled by ``annotator``.

    With a ``records_cache`` a category another process (or an earlier run) already scored with the same
    inputs is read instead of generated and scored again; while one process scores it, the others wait.

    Progress (both silent by default): ``progress(k)`` after ``k`` more images of the run are generated
    (or read with their records); ``on_stage`` (:data:`StageProgress`) per stage and category, scoring
    batch by batch when the annotator's ``annotate`` takes ``on_progress`` (else once, when it returns).
    A category read from ``records_cache`` runs no stage.

    ``overlap`` (default): the scorer labels one unit of images (:func:`scoring_units`) while the
    generator makes the next; ``False`` generates a category, then labels it. The records, their order
    and the cache are the same either way.

    ``scorer_card`` (checked by the caller to be the annotator's): metrics corrected for its errors.
    """
    requests = plan_requests(suite, images_per_prompt, categories, seed)
    base_seed = suite.seed if seed is None else seed
    per_prompt = images_per_prompt or suite.images_per_prompt
    generation = GenerationResult()
    results: dict[str, CategoryResult] = {}
    lookup = label_lookup(annotator)
    if lookup is not None:  # every planned image of the suite (any category) may be labelled
        whole = plan_requests(suite, images_per_prompt, None, seed)
        lookup.check_planned([image_id(r.category, r.prompt_index, r.image_index) for r in whole])
    for category in dict.fromkeys(r.category for r in requests):
        planned = [r for r in requests if r.category == category]
        if lookup is not None:  # labels without images: no model is loaded or called
            refs = [ImageRef(image_id(r.category, r.prompt_index, r.image_index), r.prompt, r.seed) for r in planned]
            labelled = lookup.lookup(refs, category)
            if progress is not None:
                progress(len(planned))
            results[category] = _measure(
                suite, category, labelled, mode, generator, annotator, base_seed, per_prompt, scorer_card
            )
            continue
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
        wait = None if cache is None else cache.max_lock_wait  # the same bound as the image batches'
        with records_cache.lock(key, wait) if records_cache is not None else contextlib.nullcontext():
            records = records_cache.load(key) if records_cache is not None else None
            if records is None:
                records = _score(planned, generator, annotator, cache, progress, generation, on_stage, overlap)
                if records_cache is not None:
                    records_cache.store(key, records)
            elif progress is not None:
                progress(len(planned))
        results[category] = _measure(
            suite, category, records, mode, generator, annotator, base_seed, per_prompt, scorer_card
        )
    problems = list(getattr(lookup, "problems", [])) if lookup is not None else []
    return Evaluation(RunResult.from_results(results.values()), results, generation, problems)


def label_lookup(annotator: ImageAnnotator) -> LabelLookup | None:
    """The annotator as a labels lookup when its labels need no image (precomputed labels), else None."""
    if isinstance(annotator, LabelLookup) and annotator.needs_images is False:
        return annotator
    return None


def _measure(
    suite: Suite,
    category: str,
    records: list[ImageRecord],
    mode: Mode,
    generator: ImageGenerator,
    annotator: ImageAnnotator,
    seed: int,
    images_per_prompt: int,
    card: ScorerCard | None = None,
) -> CategoryResult:
    return measure(
        suite,
        category_data(suite, category, records, mode),
        model=generator.fingerprint,
        scorer=annotator.scorer_id,
        records=records,
        seed=seed,
        images_per_prompt=images_per_prompt,
        card=card,
    )


def evaluate_suite_sharded(
    suite: Suite,
    generator: ImageGenerator,
    annotator: ImageAnnotator,
    ranks: RankInfo,
    *,
    mode: Mode = "strict",
    images_per_prompt: int | None = None,
    categories: Sequence[str] | None = None,
    cache: ImageCache | None = None,
    seed: int | None = None,
    on_stage: StageProgress | None = None,
    overlap: bool = True,
    gather: Callable[[Any], list[Any]] | None = None,
    scorer_card: ScorerCard | None = None,
) -> Evaluation | None:
    """:func:`evaluate_suite` over the ranks of a launch (``torchrun``, ``accelerate launch``); every
    rank calls it (it is a collective), each on its own device, into one shared cache.

    The plan's units (:func:`scoring_units`) are split by rank in fixed contiguous runs
    (:func:`~pytest_t2ibias.generate.sharding.shard`); each rank generates and labels its share, the
    per-image records travel to every rank as JSON (``gather``, default
    :func:`~pytest_t2ibias.generate.sharding.gather_json`), and rank 0 measures: it returns the
    :class:`Evaluation` of a single-process run (its ``generation`` counts every rank's images and lists
    rank 0's); the other ranks return ``None``.

    Raises:
        ShardError: on every rank, when any rank failed (its message names the rank and the error).
    """
    requests = plan_requests(suite, images_per_prompt, categories, seed)
    base_seed = suite.seed if seed is None else seed
    per_prompt = images_per_prompt or suite.images_per_prompt
    units = scoring_units(requests, generator.batch_size, scoring_batch(annotator))
    generation = GenerationResult()
    payload: dict[str, Any]
    try:
        records: list[ImageRecord] = []
        mine = shard(units, ranks.rank, ranks.world_size)
        for category in dict.fromkeys(unit[0].category for unit in mine):
            planned = [r for unit in mine if unit[0].category == category for r in unit]
            records += _score(planned, generator, annotator, cache, None, generation, on_stage, overlap)
        payload = {
            # python mode, not "json": an infinite score stays a float (json writes it as Infinity)
            "records": [r.model_dump() for r in records],
            "counts": [generation.new, generation.cached, generation.generated],
        }
    except Exception as err:  # every rank must reach the gather, or the others wait for it forever
        payload = error_payload(err)
    gathered = shard_payload(payload, gather or gather_json)
    if not ranks.is_main:
        return None
    for part in gathered[1:]:
        new, cached, made = part["counts"]
        generation.new += new
        generation.cached += cached
        generation.generated += made
    everything = [ImageRecord.model_validate(r) for part in gathered for r in part["records"]]
    results = {
        category: _measure(
            suite,
            category,
            [r for r in everything if r.category == category],
            mode,
            generator,
            annotator,
            base_seed,
            per_prompt,
            scorer_card,
        )
        for category in dict.fromkeys(r.category for r in requests)
    }
    return Evaluation(RunResult.from_results(results.values()), results, generation)


def _score(
    planned: Sequence[ImageRequest],
    generator: ImageGenerator,
    annotator: ImageAnnotator,
    cache: ImageCache | None,
    progress: Callable[[int], None] | None,
    generation: GenerationResult,
    on_stage: StageProgress | None = None,
    overlap: bool = True,
) -> list[ImageRecord]:
    """Generate (through the image cache) and label one category's images, unit by unit
    (:func:`scoring_units`): overlapped, the scorer labels unit k while the generator makes unit k+1."""
    category = planned[0].category
    units = scoring_units(planned, generator.batch_size, scoring_batch(annotator))
    on_generated = _both(progress, on_stage("generate", category, len(planned)) if on_stage else None)
    score_progress = _Deferred()

    side_stream = _SideStream()

    def produce(unit: Sequence[ImageRequest]) -> GenerationResult:
        with side_stream():  # on CUDA, the generator's kernels on a stream of their own
            return generate_images(unit, generator, cache, on_generated)

    def consume(generated: GenerationResult) -> list[ImageRecord]:
        generation.images += generated.images
        generation.new += generated.new
        generation.cached += generated.cached
        generation.generated += generated.generated
        return _annotate(annotator, _items(generated), category, score_progress if on_stage else None)

    def generation_done() -> None:
        # the score bar opens once generation is over: one bar at a time (the bars are not thread-safe)
        if on_stage is not None:
            score_progress.open(on_stage("score", category, len(planned)))

    parts = run_stages(units, produce, consume, overlap=overlap, on_produced=generation_done)
    return [record for part in parts for record in part]


def _items(generated: GenerationResult) -> list[AnnotationInput]:
    return [
        AnnotationInput(
            image_id=image_id(g.request.category, g.request.prompt_index, g.request.image_index),
            image=g.image,
            prompt=g.request.prompt,
            seed=g.request.seed,
            image_path=str(g.path) if g.path else None,
        )
        for g in generated.images
    ]


class _SideStream:
    """On CUDA, a stream for the generation thread, so that its kernels are not queued behind the
    scorer's on the default stream (a thread's current stream is its own; the images come back as PIL
    images, which synchronises). Without CUDA (or torch not loaded) it does nothing."""

    def __init__(self) -> None:
        self._stream: Any = None

    def __call__(self) -> contextlib.AbstractContextManager[Any]:
        import sys

        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return contextlib.nullcontext()
        if self._stream is None:
            self._stream = torch.cuda.Stream()
        return torch.cuda.stream(self._stream)  # type: ignore[no-any-return]


class _Deferred:
    """A progress callback that keeps its reports until its real callback is known, then replays them
    (one by one: a caller following batch by batch still sees each batch)."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._target: Callable[[int], None] | None = None
        self._opened = False

    def open(self, target: Callable[[int], None] | None) -> None:
        self._target, self._opened = target, True
        if target is not None:
            for k in self._pending:
                target(k)
        self._pending = []

    def __call__(self, k: int) -> None:
        if self._target is not None:
            self._target(k)
        elif not self._opened:
            self._pending.append(k)


def scoring_batch(annotator: ImageAnnotator) -> int | None:
    """Images per forward pass of ``annotator`` when labelling a run of images in chunks whose lengths are
    multiples of it gives the records of one call over the whole run (the same forward batches); ``None``
    when unknown (the category is then labelled in one call, as one unit).

    An annotator states it as an int attribute ``scoring_batch`` (the CLIP and captioner annotators do);
    the VQA annotator batches (image, question) pairs, and the synthetic and precomputed ones cost nothing
    to overlap: one unit each.
    """
    stated = getattr(annotator, "scoring_batch", None)
    if isinstance(stated, int) and not isinstance(stated, bool) and stated >= 1:
        return stated
    return None


def scoring_units(
    requests: Sequence[ImageRequest], generator_batch: int, scoring_batch: int | None
) -> list[list[ImageRequest]]:
    """The plan cut into units of work: runs of ``lcm(generator_batch, scoring_batch)`` consecutive
    requests of one category (a category's last unit may be shorter), or one unit per category when
    ``scoring_batch`` is ``None``.

    A unit starts at a multiple of both batch sizes from its category's start, so it holds whole
    generation blocks (:func:`~pytest_t2ibias.generate.stage.plan_blocks`) and whole scoring batches:
    generated and labelled alone, on any rank or thread, it yields the images and records of the whole
    plan's run. Units are what overlapped stages pass along and what ranks share out.

    Example:
        >>> from pytest_t2ibias.generate import ImageRequest
        >>> plan = [ImageRequest("doctor", 0, i, "a photo", i) for i in range(10)]
        >>> [len(unit) for unit in scoring_units(plan, 4, 6)]
        [10]
        >>> [len(unit) for unit in scoring_units(plan, 2, 3)]
        [6, 4]
    """
    if scoring_batch is None:
        return [list(block) for block in plan_blocks(requests, max(len(requests), 1))]
    return plan_blocks(requests, math.lcm(generator_batch, scoring_batch))


class _Stop:
    """The producer's last queue item: done, or the error that stopped it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def run_stages(
    units: Sequence[U],
    produce: Callable[[U], P],
    consume: Callable[[P], R],
    *,
    overlap: bool = True,
    depth: int = 2,
    on_produced: Callable[[], None] | None = None,
) -> list[R]:
    """``[consume(produce(u)) for u in units]``, in order; overlapped, ``produce`` runs in a thread
    ahead of ``consume`` (at most ``depth`` products waiting in a bounded queue), so the two stages run
    at once: torch releases the GIL in its kernels. Sequential (``overlap=False``): every unit is produced,
    then every product consumed (the stages one after the other, as before).

    ``on_produced()`` is called (in the caller's thread) once every unit is produced, before the
    products still to consume are consumed. An error in either stage stops the other: the producer
    stops after its current unit, the consumer raises the producer's error.
    """
    if not overlap or len(units) < 2:
        products = [produce(unit) for unit in units]
        if on_produced is not None:
            on_produced()
        return [consume(product) for product in products]

    line: queue.Queue[P | _Stop] = queue.Queue(maxsize=depth)
    stop, produced = threading.Event(), threading.Event()

    def put(item: P | _Stop) -> bool:
        while not stop.is_set():
            try:
                line.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def producer() -> None:
        try:
            for unit in units:
                if stop.is_set() or not put(produce(unit)):
                    return
        except BaseException as err:  # handed to the consumer, which raises it in the caller's thread
            put(_Stop(err))
            return
        produced.set()
        put(_Stop())

    thread = threading.Thread(target=producer, name="t2ibias-generate", daemon=True)
    thread.start()
    out: list[R] = []
    notified = False
    try:
        while True:
            item = line.get()
            if isinstance(item, _Stop):
                if item.error is not None:
                    raise item.error
                break
            if not notified and produced.is_set():
                notified = True
                if on_produced is not None:
                    on_produced()
            out.append(consume(item))
    finally:
        stop.set()
        thread.join()
    if not notified and on_produced is not None:
        on_produced()
    return out


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
