"""One cnnviz command as several processes, started by ``torchrun``: joining its process group,
the device and share of the work each process (*rank*) takes, and putting the shares together.

``torchrun --nproc-per-node N -m cnnviz train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` set;
:func:`process_group` joins them (nccl on CUDA, each rank on ``cuda:LOCAL_RANK``; gloo on the
CPU). Then:

* training (:func:`cnnviz.train.fit`) wraps the model in ``DistributedDataParallel``
  (:func:`cnnviz.train.parallel.data_parallel`), optionally with BatchNorm over the global
  batch (:func:`cnnviz.train.parallel.global_batchnorm`);
* whole-dataset passes give each rank a contiguous run of whole batches
  (:func:`shard_bounds`), so every batch is the one a single process would run, and put the
  rows back in image order on every rank (:func:`gather_rows`);
* only rank 0 prints progress and writes files.

Every helper is a no-op in a single process (no process group initialised, or one of one
process): no state is kept here beyond ``torch.distributed``'s own.

A rank that fails exits (the command line prints its error, naming the rank); ``torchrun``
notices within its monitor interval (0.1 s) and stops the others (measured on the CPU: 1-2 s
from the failure to torchrun's exit), and a rank blocked in a collective with a dead peer fails
with a connection error. Collectives and barriers wait up to
:data:`TIMEOUT`: long enough for rank 0 to decode a new dataset into the shared cache while
the others wait.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "BACKENDS", "TIMEOUT", "DistributedError", "Launch", "active", "all_agree", "backend", "barrier",
    "broadcast_object", "broadcast_value", "describe_rank", "gather_rows",
    "is_main", "launch_from_env", "leader_first", "local_device", "pick_backend",
    "process_group", "rank", "rank_device", "rank_seed", "shard_bounds", "split_batch", "sum_values", "sync_buffers", "world_size",
]

BACKENDS = ("auto", "nccl", "gloo")
TIMEOUT = datetime.timedelta(minutes=60)


class DistributedError(RuntimeError):
    """A multi-process launch that cannot work as asked; the message says what to do."""


@dataclass(frozen=True)
class Launch:
    """What ``torchrun`` told this process: its ``rank`` of ``world_size`` processes in all,
    and its ``local_rank`` of ``local_world_size`` on this machine (node)."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def launch_from_env(env: Mapping[str, str] | None = None) -> Launch | None:
    """The :class:`Launch` ``torchrun`` describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``); None when this process was not
    started by it."""
    env = os.environ if env is None else env
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        world, rnk = int(env["WORLD_SIZE"]), int(env["RANK"])
        local = int(env.get("LOCAL_RANK", rnk))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise DistributedError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers: start "
                               "cnnviz with torchrun, which sets them") from None
    if not (0 <= rnk < world and 0 <= local < local_world <= world):
        raise DistributedError(f"rank {rnk} of {world} (local {local} of {local_world}) is not a valid place in a "
                               "process group: start cnnviz with torchrun, which sets them")
    return Launch(rnk, world, local, local_world)


def rank_device(name: str | None, launch: Launch) -> torch.device:
    """The device this rank runs on when the command asks for ``name`` (``auto``/None: CUDA
    when present, else the CPU): a CUDA device without an index becomes ``cuda:LOCAL_RANK``.
    Refuses (:class:`DistributedError`) more processes on a machine than it has GPUs, and one
    GPU index for several processes of a machine."""
    asked = "auto" if name in (None, "auto") else str(name)
    wanted = ("cuda" if torch.cuda.is_available() else "cpu") if asked == "auto" else asked
    try:
        dev = torch.device(wanted)
    except RuntimeError:
        raise DistributedError(f"--device {asked} is not a device name: use auto, cpu or cuda") from None
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        raise DistributedError(f"--device {asked} asked for but CUDA is not available: use --device cpu")
    if dev.index is not None:
        if launch.local_world_size > 1:
            raise DistributedError(f"--device {asked} would put all {launch.local_world_size} processes of this "
                                   "machine on one GPU; under torchrun each process takes the GPU of its local "
                                   "rank: use --device cuda (or auto)")
        return dev
    count = torch.cuda.device_count()
    if launch.local_world_size > count:
        raise DistributedError(f"torchrun started {launch.local_world_size} processes on this machine but it has "
                               f"{count} GPU{'s' if count != 1 else ''}: use --nproc-per-node {count} or fewer, "
                               "or --device cpu")
    return torch.device("cuda", launch.local_rank)


def pick_backend(asked: str, device: torch.device) -> str:
    """The communication backend for ``device``: ``auto`` is nccl on CUDA, gloo elsewhere;
    nccl is refused off CUDA."""
    if asked not in BACKENDS:
        raise DistributedError(f"--dist-backend {asked} is not one of {', '.join(BACKENDS)}")
    if asked == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if asked == "nccl":
        if device.type != "cuda":
            raise DistributedError(f"--dist-backend nccl runs on CUDA GPUs only, and this run uses {device}: use "
                                   "--dist-backend gloo (or auto), or a GPU (--device cuda)")
        if not dist.is_nccl_available():
            raise DistributedError("--dist-backend nccl: this PyTorch has no NCCL: use --dist-backend gloo")
    return asked


@contextlib.contextmanager
def process_group(device: str | None = "auto", backend: str = "auto",
                  launch: Launch | None = None) -> Iterator[Launch | None]:
    """Join ``torchrun``'s process group for the block and leave it after; yields the
    :class:`Launch`, or None (doing nothing) when the process was not started by torchrun.

    ``device`` is the command's ``--device``: it decides this rank's device
    (:func:`rank_device`, made the current CUDA device) and, with ``backend="auto"``, the
    backend (:func:`pick_backend`). A group someone else initialised is used as it is and left
    open. When the block raises, the group is left without a goodbye (a peer may be waiting in
    a collective that will never complete): the process exits and torchrun stops the others."""
    launch = launch or launch_from_env()
    if launch is None:
        if backend != "auto":
            raise DistributedError(f"--dist-backend {backend} only applies under torchrun (this process was not "
                                   "started by it): leave it out, or run torchrun --nproc-per-node N -m cnnviz ...")
        yield None
        return
    if not dist.is_available():
        raise DistributedError("this PyTorch was built without torch.distributed: run cnnviz without torchrun")
    if dist.is_initialized():
        yield launch
        return
    dev = rank_device(device, launch)
    name = pick_backend(backend, dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(name, timeout=TIMEOUT, device_id=dev if name == "nccl" else None)
    yield launch
    dist.destroy_process_group()


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def active() -> bool:
    """True inside a process group of more than one process."""
    return _initialised() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if _initialised() else 0


def world_size() -> int:
    """The number of processes (1 outside a process group)."""
    return dist.get_world_size() if _initialised() else 1


def is_main() -> bool:
    """True on rank 0, the one that prints and writes (and in a single process)."""
    return rank() == 0


def backend() -> str:
    """The process group's backend (``"nccl"``, ``"gloo"``), or ``""`` outside one."""
    return str(dist.get_backend()) if _initialised() else ""


def describe_rank() -> str:
    """``"rank 1 of 2"``, or ``""`` in a single process (for messages)."""
    return f"rank {rank()} of {world_size()}" if active() else ""


def local_device(dev: torch.device) -> torch.device:
    """``dev`` with this rank's GPU filled in: inside a process group a CUDA device without an
    index is the current one (``cuda:LOCAL_RANK``, set by :func:`process_group`)."""
    if dev.type == "cuda" and dev.index is None and _initialised():
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def rank_seed(seed: int) -> int:
    """This rank's seed for randomness that must differ between ranks (augmentation,
    dropout): ``seed`` itself in a single process, else one drawn from ``(seed, rank)``."""
    if not active():
        return seed
    return int(np.random.SeedSequence([seed, rank()]).generate_state(1, np.uint32)[0])


def _comm_device() -> torch.device:
    """Where the group's tensors must live: the current GPU for nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait until every rank gets here."""
    if active():
        dist.barrier()


def sum_values(values: Sequence[float]) -> list[float]:
    """``values`` summed over the ranks (float64), element by element."""
    if not active():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.tolist()


def all_agree(flag: bool) -> bool:
    """True when ``flag`` is true on every rank."""
    if not active():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def broadcast_value(value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. a plan all ranks must follow)."""
    if not active():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    dist.broadcast(t, 0)
    return t.item()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` (small and picklable) on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, 0)
    return box[0]


@torch.no_grad()
def sync_buffers(module: nn.Module) -> None:
    """Overwrite every rank's buffers of ``module`` (BatchNorm's running statistics) with rank
    0's, in place."""
    if not active():
        return
    for buf in module.buffers():
        if buf.device.type == _comm_device().type:
            dist.broadcast(buf, 0)
        else:
            t = buf.to(_comm_device())
            dist.broadcast(t, 0)
            buf.copy_(t)


@contextlib.contextmanager
def leader_first(enabled: bool = True) -> Iterator[None]:
    """Run the block on each machine's local rank 0 first, then on the others: the first fills
    a shared on-disk cache (decoded images) that the others then read. Nothing when not
    ``enabled`` or in a single process."""
    if not (enabled and active()):
        yield
        return
    first = int(os.environ.get("LOCAL_RANK", rank())) == 0
    if not first:
        dist.barrier()
    try:
        yield
    finally:  # also when the block raises: the others then meet the same error, or torchrun stops them
        if first:
            dist.barrier()


def shard_bounds(n: int, batch_size: int, rnk: int | None = None, world: int | None = None) -> tuple[int, int]:
    """``(start, stop)``: the rows of a pass over ``n`` rows in batches of ``batch_size`` that
    rank ``rnk`` (default: this one) of ``world`` runs. Each rank gets a contiguous run of whole
    batches (the first ranks one more when they do not divide evenly), so every batch holds the
    same rows as in a single pass and the results are the same bit for bit."""
    rnk = rank() if rnk is None else rnk
    world = world_size() if world is None else world
    batches = -(-n // batch_size)
    base, extra = divmod(batches, world)
    first = rnk * base + min(rnk, extra)
    count = base + (1 if rnk < extra else 0)
    return min(n, first * batch_size), min(n, (first + count) * batch_size)


def split_batch(idx: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch of image indices: one of ``world_size`` contiguous
    parts whose sizes differ by at most one."""
    if not active():
        return idx
    return torch.tensor_split(idx, world_size())[rank()]


def gather_rows(part: np.ndarray) -> np.ndarray:
    """Every rank's ``part`` (rows of one array) stacked in rank order, on every rank:
    with :func:`shard_bounds`, the rows of the whole pass in their original order. ``part``
    itself in a single process. Ranks without rows may give any trailing shape."""
    if not active():
        return part
    shapes: list[Any] = [None] * world_size()
    dist.all_gather_object(shapes, (len(part), tuple(part.shape[1:]), str(part.dtype)))
    rows = [s[0] for s in shapes]
    full = next((s for s in shapes if s[0] > 0), None)
    if full is None:
        return part
    tail, dtype = full[1], np.dtype(full[2])
    dev = _comm_device()
    buf = torch.zeros((max(rows), *tail), dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, device=dev)
    if len(part):
        buf[:len(part)] = torch.from_numpy(np.ascontiguousarray(part, dtype)).to(dev)
    out = [torch.empty_like(buf) for _ in rows]
    dist.all_gather(out, buf)
    return np.concatenate([o[:r].cpu().numpy() for o, r in zip(out, rows)])
