"""Training images/s of the default CIFAR-10 model in one CPU process and in two (gloo,
DistributedDataParallel), on the same cores, through cnnviz's own training loop (``fit``).

    python benchmarks/distributed_speed.py [--model NAME] [--batch-size 512] [--steps 6] [--epochs 2]
                                           [--threads N]

Synthetic 32-px images (``batch-size * steps`` of them, 10 classes) and the model's own recipe
(``cnnviz models``), with ``batch-size`` as the global batch: two processes take half of every
batch each and half of the ``--threads`` (default: every core this process may use), so both
runs use the same cores. The first epoch warms up; the figure is the training speed of the last
(images of the epoch over its training time, validation excluded), both runs in the same
invocation, then their ratio. About a minute with the defaults on 2 cores; ``--steps 2
--batch-size 32`` is a smoke run of a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from cnnviz.data import ImageDataset, Preprocess, profile
from cnnviz.inputs import Normalization
from cnnviz.models import get_model, model_spec
from cnnviz.train import TrainConfig, fit


def synthetic(n: int, size: int = 32, classes: int = 10) -> ImageDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, classes, n).astype(np.int64)
    return ImageDataset(images, labels, [f"c{i}" for i in range(classes)], [f"{i}" for i in range(n)], "synthetic",
                        Preprocess(size))


def worker(rank: int, world: int, port: int, opts: dict, out: str) -> None:
    """One process of a run: train, and (rank 0) write the last epoch's figures to ``out``."""
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ds = synthetic(opts["batch_size"] * opts["steps"])
        torch.manual_seed(0)
        model = get_model(opts["model"], 10, 32)
        cfg = TrainConfig.from_dict(model_spec(opts["model"]).train_defaults).with_overrides(
            epochs=opts["epochs"], batch_size=opts["batch_size"], device="cpu",
            threads=max(1, opts["threads"] // world))
        result = fit(model, ds, None, cfg, Normalization.fit(ds.images), progress=False)
        if rank == 0:
            last = result.history[-1]
            Path(out).write_text(json.dumps({"images_per_s": last.images_per_s, "runtime": result.runtime,
                                             "threads": torch.get_num_threads(), "world": result.world_size}))
    finally:
        if world > 1:
            dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(world: int, opts: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        mp.start_processes(worker, args=(world, free_port(), opts, out), nprocs=world, start_method="spawn")
        return json.loads(Path(out).read_text())


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=profile("cifar10").default_model, help="default: CIFAR-10's default model")
    ap.add_argument("--batch-size", type=int, default=512, help="global batch (default 512)")
    ap.add_argument("--steps", type=int, default=6, help="steps per epoch (default 6)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs; the first warms up (default 2)")
    ap.add_argument("--threads", type=int, default=cores, help=f"threads in all (default {cores})")
    a = ap.parse_args()
    if a.batch_size < 2 or a.steps < 1 or a.epochs < 1 or a.threads < 1:
        ap.error("--batch-size must be at least 2, and --steps, --epochs and --threads at least 1")
    opts = {"model": a.model, "batch_size": a.batch_size, "steps": a.steps, "epochs": a.epochs, "threads": a.threads}
    print(f"{a.model}, 32 px, global batch {a.batch_size}, {a.steps} steps per epoch, {a.epochs} "
          f"epoch{'s' if a.epochs != 1 else ''}, {a.threads} threads in all")
    one = measure(1, opts)
    print(f"  1 process  x {one['threads']} threads: {one['images_per_s']:8.1f} img/s ({one['runtime']})")
    two = measure(2, opts)
    print(f"  2 processes x {two['threads']} threads: {two['images_per_s']:8.1f} img/s ({two['runtime']}, "
          f"batch {a.batch_size // 2} per process)")
    print(f"  ratio 2 processes / 1 process: {two['images_per_s'] / one['images_per_s']:.2f}")


if __name__ == "__main__":
    main()
