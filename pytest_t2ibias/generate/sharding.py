"""Sharding over ranks (``torchrun`` / ``accelerate launch``) and over pytest-xdist workers.

No scheduler of our own: the launcher starts the processes and sets ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK``; :func:`rank_from_env` reads them, :func:`init_distributed` joins torch.distributed's
process group (gloo on the CPU, nccl on CUDA), :func:`shard` gives each rank a fixed contiguous run of
the plan's units (blocks of the plan, never split), and :func:`gather_json` brings every rank's plain
JSON payload to all ranks (rank 0 measures and prints; the others only report errors).

Since a unit is a whole generation block (and a whole scoring batch) at the same place in the plan
whatever the number of ranks, every image is made in the same batch beside the same neighbours: the
cache keys, the PNG bytes and the records are those of a single-process run.

The split and the device choices are pure functions, testable without a process group.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_t2ibias._io import one_line
from pytest_t2ibias.errors import ShardError as ShardError

if TYPE_CHECKING:
    from pytest_t2ibias.generate.base import ImageGenerator, ImageRequest
    from pytest_t2ibias.generate.cache import ImageCache
    from pytest_t2ibias.generate.stage import GenerationResult

T = TypeVar("T")


@dataclass(frozen=True)
class RankInfo:
    """This process's place in a launch: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def rank_from_env(environ: Mapping[str, str] | None = None) -> RankInfo | None:
    """The launch this process belongs to (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` as torchrun and
    accelerate set them), or ``None`` when it runs alone (no ``WORLD_SIZE``, or a world of 1).

    >>> rank_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    RankInfo(rank=1, world_size=2, local_rank=1)
    >>> rank_from_env({}) is None
    True
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise ValueError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {err}") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"RANK={rank} / WORLD_SIZE={world} / LOCAL_RANK={local} do not describe a launch")
    return None if world == 1 else RankInfo(rank, world, local)


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, end)`` of rank ``rank``'s contiguous share of ``total`` units: shares differ by at most
    one unit, and concatenated in rank order they are the whole plan in plan order.

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 2), (2, 5)]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size}")
    return total * rank // world_size, total * (rank + 1) // world_size


def shard(units: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank ``rank``'s fixed, contiguous share of ``units`` (see :func:`shard_bounds`).

    >>> shard(["a", "b", "c", "d", "e"], 1, 2)
    ['c', 'd', 'e']
    """
    start, end = shard_bounds(len(units), rank, world_size)
    return list(units[start:end])


def rank_device(device: str, local_rank: int, cuda_count: int) -> str:
    """The device of one rank: ``cuda:<local_rank>`` (modulo the devices present) when the setting is
    ``auto`` or ``cuda`` and CUDA devices exist; any other setting (``cpu``, ``cuda:N``) as given.

    >>> rank_device("auto", 3, 4), rank_device("cuda", 5, 4), rank_device("auto", 1, 0), rank_device("cpu", 1, 4)
    ('cuda:3', 'cuda:1', 'auto', 'cpu')
    """
    if device in ("auto", "cuda") and cuda_count > 0:
        return f"cuda:{local_rank % cuda_count}"
    return device


def xdist_device(device: str, worker: str | None, cuda_count: int) -> str:
    """The device of a pytest-xdist worker (``PYTEST_XDIST_WORKER`` = ``gwN``): ``cuda:<N mod device
    count>`` when the setting is ``auto`` or ``cuda`` and CUDA devices exist; otherwise as given.

    >>> xdist_device("auto", "gw5", 4), xdist_device("cuda", None, 4), xdist_device("cuda:0", "gw1", 4)
    ('cuda:1', 'cuda', 'cuda:0')
    """
    if worker is None or not worker.startswith("gw") or not worker[2:].isdigit():
        return device
    return rank_device(device, int(worker[2:]), cuda_count)


def backend_for(device: str) -> str:
    """The process-group backend for a device: nccl for CUDA, gloo otherwise."""
    return "nccl" if device.startswith("cuda") else "gloo"


def init_distributed(info: RankInfo, device: str) -> bool:
    """Join the launch's process group (torchrun's env:// rendezvous) unless one is already up (under
    ``accelerate launch`` a script may have initialised it). Returns whether this call initialised it,
    so the caller tears down only what it set up (:func:`finish_distributed`)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    backend = backend_for(device)
    if backend == "nccl":
        import torch

        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return True


def finish_distributed(initialised: bool) -> None:
    """Leave the process group if :func:`init_distributed` set it up."""
    import torch.distributed as dist

    if initialised and dist.is_initialized():
        dist.destroy_process_group()


def gather_json(payload: Any) -> list[Any]:
    """Every rank's ``payload`` (plain JSON data: dicts, lists, str, numbers), in rank order, on every rank.

    Payloads travel as JSON text (``all_gather_object`` of a ``str``), so only strings are unpickled
    between our own ranks, and what arrives is exactly what a single process would have held.
    """
    import torch.distributed as dist

    text = json.dumps(payload, separators=(",", ":"))
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, text)
    return [json.loads(item) for item in gathered]


@contextlib.contextmanager
def distributed(info: RankInfo, device: str) -> Iterator[None]:
    """Inside the launch's process group (:func:`init_distributed`, then :func:`finish_distributed`)."""
    initialised = init_distributed(info, device)
    try:
        yield
    finally:
        finish_distributed(initialised)


def shard_payload(payload: dict[str, Any], gather: Callable[[Any], list[Any]]) -> list[dict[str, Any]]:
    """Every rank's ``payload`` (rank order) through ``gather``; a payload ``{"error": text}`` on any
    rank raises :class:`ShardError` on every rank, naming the ranks that failed.

    >>> shard_payload({"n": 1}, lambda p: [p, {"n": 2}])
    [{'n': 1}, {'n': 2}]
    >>> shard_payload({"n": 1}, lambda p: [p, {"error": "boom"}])
    Traceback (most recent call last):
    ...
    pytest_t2ibias.errors.ShardError: rank 1: boom
    """
    gathered: list[dict[str, Any]] = gather(payload)
    failed = [f"rank {rank}: {part['error']}" for rank, part in enumerate(gathered) if "error" in part]
    if failed:
        raise ShardError("; ".join(failed), payload.get("error"))
    return gathered


def error_payload(err: BaseException) -> dict[str, Any]:
    """The payload a failed rank sends instead of its results (one line: type and message)."""
    return {"error": one_line(f"{type(err).__name__}: {err}")}


def generate_sharded(
    requests: Sequence[ImageRequest],
    generator: ImageGenerator,
    cache: ImageCache | None,
    info: RankInfo,
    progress: Callable[[int], None] | None = None,
    gather: Callable[[Any], list[Any]] | None = None,
) -> GenerationResult | None:
    """The generation stage over the ranks of a launch (a collective: every rank calls it): the plan's
    blocks are split by rank in fixed contiguous runs, each rank generates its share into ``cache``.

    Rank 0 returns the counts of the whole run (its ``images`` are its own share); the others ``None``.

    Raises:
        ShardError: on every rank, when any rank failed.
    """
    from pytest_t2ibias.generate.stage import GenerationResult, generate_blocks, plan_blocks

    payload: dict[str, Any]
    result = GenerationResult()
    try:
        mine = shard(plan_blocks(requests, generator.batch_size), info.rank, info.world_size)
        result = generate_blocks(mine, generator, cache, progress)
        payload = {"counts": [result.new, result.cached, result.generated]}
    except Exception as err:  # every rank must reach the gather, or the others wait for it forever
        payload = error_payload(err)
    gathered = shard_payload(payload, gather or gather_json)
    if not info.is_main:
        return None
    for part in gathered[1:]:
        new, cached, made = part["counts"]
        result.new += new
        result.cached += cached
        result.generated += made
    return result
