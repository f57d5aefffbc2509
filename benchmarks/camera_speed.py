"""Frames per second of the Camera page's library path (cnnviz.live.LiveClassifier): a 640x480
RGB frame -> the checkpoint's preprocessing -> one forward pass -> top-5 and the strongest
feature maps of the default layer. Target: at least 10 frames/s with the CIFAR-10 model.

Measured in one run, interleaved in rounds so that a busy machine weighs on both alike:

* fp32 and the checkpoint's own runtime (bf16 autocast + channels_last on CPUs with fast bf16),
  both on one CPU thread (the classifier's default);
* the checkpoint's runtime on torch's default thread count (a few frames: on a busy machine
  threads that wait for each other are what makes it slow);
* a simulated 30 frames/s camera for a few seconds through ``submit`` (the page's path): frames
  processed per second and frames dropped.

    python benchmarks/camera_speed.py [checkpoints/cifar10_cnn] [--frames 100] [--camera-seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from _common import ROOT

from cnnviz.checkpoints import load_checkpoint
from cnnviz.live import LiveClassifier
from cnnviz.runtime import Runtime


def frames_per_second(live: LiveClassifier, frames: list[np.ndarray], n: int, rounds: int,
                      times: list[float]) -> None:
    """Process ``n // rounds`` frames, appending each one's wall time to ``times``."""
    for i in range(max(1, n // rounds)):
        t0 = time.perf_counter()
        live.process(frames[i % len(frames)])
        times.append(time.perf_counter() - t0)


def report(name: str, times: list[float]) -> float:
    fps = len(times) / sum(times)
    print(f"{name:<50} {fps:7.1f} frames/s  (median {statistics.median(times) * 1000:5.1f} ms, "
          f"p90 {np.percentile(times, 90) * 1000:5.1f} ms, {len(times)} frames)")
    return fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "cifar10_cnn"))
    ap.add_argument("--frames", type=int, default=100, help="frames per configuration (default 100)")
    ap.add_argument("--camera-seconds", type=float, default=3.0, help="simulated camera run (default 3)")
    args = ap.parse_args()

    ckpt = load_checkpoint(args.checkpoint)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(8)]
    own = ckpt.runtime
    fp32 = Runtime(own.device, None, own.channels_last)
    print(f"{ckpt.name}: {ckpt.meta.preprocess.size} px input, synthetic 640x480 frames, "
          f"{torch.get_num_threads()} torch threads available")

    runs = {"fp32": LiveClassifier(ckpt, runtime=fp32), "checkpoint": LiveClassifier(ckpt, runtime=own)}
    names = {"fp32": f"fp32 ({fp32.describe()}), 1 thread",
             "checkpoint": f"checkpoint runtime ({own.describe()}), 1 thread"}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for live in runs.values():  # warm-up
        for f in frames[:3]:
            live.process(f)
    rounds = 5
    for _ in range(rounds):
        for key, live in runs.items():
            frames_per_second(live, frames, args.frames, rounds, times[key])
    fps = {key: report(names[key], times[key]) for key in runs}
    print(f"ratio checkpoint runtime / fp32: {fps['checkpoint'] / fps['fp32']:.2f}x")

    many = LiveClassifier(ckpt, runtime=own, threads=None)
    many.process(frames[0])
    few: list[float] = []
    frames_per_second(many, frames, max(5, args.frames // 10), 1, few)
    report(f"checkpoint runtime, torch's {torch.get_num_threads()} threads", few)

    live = LiveClassifier(ckpt)  # as the Camera page makes it: runtime "auto", 1 thread
    live.process(frames[0])  # lets "auto" choose before the clock starts
    start = live.stats()
    t0 = time.perf_counter()
    k = 0
    while time.perf_counter() - t0 < args.camera_seconds:
        live.submit(frames[k % len(frames)])
        k += 1
        time.sleep(max(0.0, t0 + k / 30 - time.perf_counter()))
    live.wait_idle(10)
    elapsed = time.perf_counter() - t0
    end = live.stats()
    live.close()
    print(f"simulated 30 frames/s camera for {elapsed:.1f} s ('auto' chose {live.runtime.describe()}): "
          f"{end.received - start.received} frames in, {(end.processed - start.processed) / elapsed:.1f} "
          f"processed/s, {end.dropped - start.dropped} dropped")
    best = max(fps.values())
    print(f"target >= 10 frames/s: {'met' if best >= 10 else 'NOT met'} ({best:.1f})")


if __name__ == "__main__":
    main()
