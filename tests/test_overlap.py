"""Generation and scoring overlapped: the stages really run at once, the records and the cache are the
ones of the sequential pipeline, and an error in either stage stops the other and reaches the caller."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.generate.cache import ImageCache
from pytest_t2ibias.generate.factory import load_generator
from pytest_t2ibias.pipeline import evaluate_suite, run_stages
from pytest_t2ibias.suites import load_suite


@pytest.mark.parametrize("overlap", [True, False])
def test_results_come_in_unit_order(overlap: bool) -> None:
    assert run_stages(list(range(7)), lambda u: u * 10, lambda p: p + 1, overlap=overlap) == [
        1,
        11,
        21,
        31,
        41,
        51,
        61,
    ]


def test_the_generator_works_on_the_next_unit_while_the_scorer_labels_this_one() -> None:
    second_started = threading.Event()
    events: list[str] = []

    def produce(unit: int) -> int:
        events.append(f"produce {unit}")
        if unit == 1:
            second_started.set()
        return unit

    def consume(product: int) -> int:
        if product == 0:
            # sequential stages would never get here with unit 1 started: the wait would time out
            assert second_started.wait(timeout=10), "the producer did not run ahead of the consumer"
        events.append(f"consume {product}")
        return product

    assert run_stages([0, 1, 2], produce, consume, overlap=True) == [0, 1, 2]
    assert events.index("produce 1") < events.index("consume 0")


def test_the_queue_is_bounded() -> None:
    produced: list[int] = []
    release = threading.Event()

    def consume(product: int) -> int:
        if product == 0:
            release.wait(timeout=0.5)  # the producer may fill the queue meanwhile, no more
            assert len(produced) <= 1 + 2 + 1  # the consumed one, a full queue (depth 2), one in its hands
        return product

    run_stages(list(range(10)), lambda u: produced.append(u) or u, consume, overlap=True, depth=2)
    assert produced == list(range(10))


def test_a_generation_error_reaches_the_caller_after_the_units_before_it() -> None:
    consumed: list[int] = []

    def produce(unit: int) -> int:
        if unit == 3:
            raise RuntimeError("CUDA out of memory")
        return unit

    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        run_stages(list(range(6)), produce, consumed.append, overlap=True)
    assert consumed == [0, 1, 2]
    assert not [t for t in threading.enumerate() if t.name == "t2ibias-generate"]


def test_a_scoring_error_stops_the_generator() -> None:
    produced: list[int] = []

    def consume(product: int) -> int:
        if product == 1:
            raise ValueError("bad image")
        return product

    with pytest.raises(ValueError, match="bad image"):
        run_stages(list(range(50)), lambda u: produced.append(u) or u, consume, overlap=True, depth=2)
    assert len(produced) < 50  # stopped early, not run to the end
    assert not [t for t in threading.enumerate() if t.name == "t2ibias-generate"]


def test_on_produced_is_called_once_in_the_callers_thread() -> None:
    calls: list[str] = []
    run_stages(
        [1, 2, 3],
        lambda u: u,
        lambda p: p,
        overlap=True,
        on_produced=lambda: calls.append(threading.current_thread().name),
    )
    assert calls == [threading.current_thread().name]


def test_overlapped_and_sequential_evaluations_are_identical(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny CPU pipeline's pixels depend on the thread count: keep it fixed
    try:
        suite = load_suite("t2i-biasbench")
        generator = load_generator("tiny", suite, batch_size=4)
        annotator = load_annotator("tiny", suite)
        runs = {}
        for overlap in (True, False):
            root = tmp_path / str(overlap)
            evaluation = evaluate_suite(
                suite,
                generator,
                annotator,
                images_per_prompt=20,  # units of 16 (lcm of 4 and the scorer's 16) and 4
                categories=["doctor"],
                cache=ImageCache(root),
                overlap=overlap,
            )
            runs[overlap] = (evaluation.result.to_json().replace(str(root), "ROOT"), evaluation.records)
        assert runs[True][0] == runs[False][0]
        assert [r.image_id for r in runs[True][1]["doctor"]] == [r.image_id for r in runs[False][1]["doctor"]]
        for png in (tmp_path / "True").rglob("*.png"):
            assert png.read_bytes() == (tmp_path / "False" / png.relative_to(tmp_path / "True")).read_bytes()
        assert len(list((tmp_path / "True").rglob("*.png"))) == 20
    finally:
        torch.set_num_threads(threads)
