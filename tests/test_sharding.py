"""Sharding over ranks: the pure split and device choices, both ranks of a run simulated in one process
(a stub gather), and a real 2-process ``torchrun`` (gloo) run of ``t2ibias evaluate`` on the tiny model
whose JSON and cache bytes must equal a single-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_t2ibias.annotate.factory import load_annotator
from pytest_t2ibias.errors import ShardError
from pytest_t2ibias.generate.factory import load_generator
from pytest_t2ibias.generate.sharding import (
    RankInfo,
    generate_sharded,
    rank_device,
    rank_from_env,
    shard,
    shard_bounds,
    xdist_device,
)
from pytest_t2ibias.generate.stage import generate_images, plan_blocks, plan_requests
from pytest_t2ibias.pipeline import evaluate_suite, evaluate_suite_sharded, scoring_units
from pytest_t2ibias.suites import load_suite

REPO = Path(__file__).resolve().parents[1]


# -- the split -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [0, 1, 2, 5, 7, 64])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shares_are_contiguous_cover_the_plan_once_and_differ_by_at_most_one(total: int, world: int) -> None:
    units = list(range(total))
    shares = [shard(units, rank, world) for rank in range(world)]
    assert [u for share in shares for u in share] == units  # rank order is plan order
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    for rank, share in enumerate(shares):
        start, end = shard_bounds(total, rank, world)
        assert share == units[start:end]


def test_a_bad_rank_is_an_error() -> None:
    with pytest.raises(ValueError, match="rank 2 is not in a world of 2"):
        shard_bounds(4, 2, 2)


def test_rank_from_env_reads_the_launcher_variables() -> None:
    assert rank_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == RankInfo(3, 4, 1)
    assert rank_from_env({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None  # alone: no sharding
    assert rank_from_env({}) is None
    with pytest.raises(ValueError, match="RANK=5 / WORLD_SIZE=2"):
        rank_from_env({"RANK": "5", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="must be integers"):
        rank_from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_devices_per_rank_and_per_xdist_worker() -> None:
    assert rank_device("auto", 1, 2) == "cuda:1"
    assert rank_device("cuda", 6, 4) == "cuda:2"
    assert rank_device("cuda:0", 1, 4) == "cuda:0"  # an explicit device is kept
    assert rank_device("auto", 1, 0) == "auto"  # no CUDA: the setting decides (the CPU)
    assert xdist_device("auto", "gw0", 4) == "cuda:0"
    assert xdist_device("cuda", "gw7", 4) == "cuda:3"
    assert xdist_device("auto", "gw3", 0) == "auto"
    assert xdist_device("cuda", None, 4) == "cuda"  # not a worker
    assert xdist_device("cuda", "master", 4) == "cuda"


def test_units_hold_whole_generation_blocks_at_their_plan_places() -> None:
    suite = load_suite("t2i-biasbench")
    requests = plan_requests(suite, 36, ["doctor", "nature"])
    units = scoring_units(requests, 4, 16)
    assert [len(u) for u in units] == [16, 16, 4, 16, 16, 4]
    whole = plan_blocks(requests, 4)
    assert [b for unit in units for b in plan_blocks(unit, 4)] == whole
    # a rank's share, generated alone, makes the blocks the whole plan makes
    for rank in range(3):
        mine = shard(units, rank, 3)
        assert all(block in whole for unit in mine for block in plan_blocks(unit, 4))


# -- both ranks in one process (a stub gather) --------------------------------------------------------


def _two_ranks(run: Any) -> tuple[Any, Any]:
    """``run(info, gather)`` as rank 1, then as rank 0, exchanging payloads as all_gather would."""
    sent: dict[int, Any] = {}

    def gather_as(rank: int) -> Any:
        def gather(payload: Any) -> list[Any]:
            sent[rank] = payload
            # rank 1 runs first: it sees a placeholder for rank 0 (it discards what it gathers)
            return [sent.get(0, {"records": [], "counts": [0, 0, 0]}), sent.get(1)]

        return gather

    second = run(RankInfo(1, 2, 1), gather_as(1))
    first = run(RankInfo(0, 2, 0), gather_as(0))
    return first, second


def test_sharded_evaluation_equals_a_single_process_one(tmp_path: Path) -> None:
    suite = load_suite("t2i-biasbench")
    generator = load_generator("synthetic", suite, batch_size=4)
    annotator = load_annotator("synthetic", suite)
    annotator.scoring_batch = 2  # type: ignore[attr-defined]  # units of 4: the ranks split the category
    kwargs: dict[str, Any] = {"images_per_prompt": 10, "categories": ["doctor"]}
    assert [len(u) for u in scoring_units(plan_requests(suite, 10, ["doctor"]), 4, 2)] == [4, 4, 2]
    from pytest_t2ibias.generate.cache import ImageCache

    alone = evaluate_suite(suite, generator, annotator, cache=ImageCache(tmp_path / "one"), **kwargs)

    def run(info: RankInfo, gather: Any) -> Any:
        cache = ImageCache(tmp_path / "two")
        return evaluate_suite_sharded(suite, generator, annotator, info, cache=cache, gather=gather, **kwargs)

    main, other = _two_ranks(run)
    assert other is None
    assert main is not None
    assert main.result.to_json() == alone.result.to_json().replace(str(tmp_path / "one"), str(tmp_path / "two"))
    assert main.generation is not None and main.generation.new == 10 and main.generation.cached == 0
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.png"))
    assert one == two and len(one) == 10
    assert all((tmp_path / "one" / p).read_bytes() == (tmp_path / "two" / p).read_bytes() for p in one)


def test_sharded_generation_counts_every_rank_on_rank_0(tmp_path: Path) -> None:
    from pytest_t2ibias.generate.cache import ImageCache

    suite = load_suite("t2i-biasbench")
    generator = load_generator("synthetic", suite, batch_size=4)
    requests = plan_requests(suite, 10, ["doctor", "culture"])
    cache = ImageCache(tmp_path)

    def run(info: RankInfo, gather: Any) -> Any:
        return generate_sharded(requests, generator, cache, info, gather=gather)

    main, other = _two_ranks(run)
    assert other is None and main is not None
    assert (main.new, main.cached) == (20, 0)
    again = generate_images(requests, generator, cache)  # a single process finds every image cached
    assert (again.new, again.cached) == (0, 20)


def test_a_failed_rank_fails_every_rank_naming_it(tmp_path: Path) -> None:
    suite = load_suite("t2i-biasbench")
    generator = load_generator("synthetic", suite, batch_size=4)
    annotator = load_annotator("synthetic", suite)

    def gather(payload: Any) -> list[Any]:
        return [payload, {"error": "RuntimeError: CUDA out of memory"}]

    with pytest.raises(ShardError, match=r"^rank 1: RuntimeError: CUDA out of memory$") as caught:
        evaluate_suite_sharded(
            suite, generator, annotator, RankInfo(0, 2, 0), images_per_prompt=2, categories=["doctor"], gather=gather
        )
    assert caught.value.local is None  # rank 0 itself did fine


# -- a real launch: torchrun, 2 processes, gloo -------------------------------------------------------


def _evaluate(cwd: Path, launcher: list[str]) -> str:
    cwd.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(cwd / "xdg")}
    env.pop("WORLD_SIZE", None)
    command = [
        *launcher,
        "-m",
        "pytest_t2ibias.cli",
        "evaluate",
        "--model",
        "tiny",
        "--scorer",
        "tiny",
        "--category",
        "doctor",
        "--images-per-prompt",
        "20",
        "--batch-size",
        "4",
        "--cache",
        "cache",  # relative: the records name the same path in both runs
        "--format",
        "json",
        "-q",
    ]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_torchrun_two_ranks_match_one_process_byte_for_byte(tmp_path: Path) -> None:
    # one thread per process in both runs: the tiny CPU pipeline's pixels depend on the thread count
    alone = _evaluate(tmp_path / "one", [sys.executable])
    ranks = _evaluate(tmp_path / "two", [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"])
    assert ranks == alone  # rank 0 alone printed, and printed the single-process result
    assert '"doctor"' in alone
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one" / "cache").rglob("*") if p.is_file())
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two" / "cache").rglob("*") if p.is_file())
    assert one == two
    assert len([p for p in one if p.suffix == ".png"]) == 20
    for path in one:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes(), path


# -- pytest-xdist: one GPU per worker ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "worker", "count", "expected"),
    [
        ("auto", "gw0", 4, "cuda:0"),
        ("auto", "gw5", 4, "cuda:1"),
        ("cuda", "gw2", 2, "cuda:0"),
        ("cuda:3", "gw1", 4, "cuda:3"),  # an explicit device wins
        ("cpu", "gw1", 4, "cpu"),
        ("auto", "gw1", 0, "auto"),  # no GPU: the setting decides
        ("auto", None, 4, "auto"),  # not under xdist
    ],
)
def test_the_session_gives_each_xdist_worker_its_own_gpu(
    setting: str, worker: str | None, count: int, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from pytest_t2ibias import session as session_module
    from pytest_t2ibias.settings import Settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    if worker is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    session = session_module.T2IBiasSession(config=None, settings=Settings(device=setting))  # type: ignore[arg-type]
    assert session.stages.device() == expected


@pytest.mark.parametrize(
    "name", ["pytest_t2ibias.generate.sharding", "pytest_t2ibias.generate.storage", "pytest_t2ibias.pipeline"]
)
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
