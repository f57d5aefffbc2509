"""Inspection timings with a shipped checkpoint on CIFAR-10:

* penultimate features of all 60,000 images (train + test), one pass, no cache;
* feature maps of one image for every layer (worst and median);
* the first-layer filter set.

    python benchmarks/inspect_speed.py [checkpoints/cifar10_fast]
"""

from __future__ import annotations

import statistics
import sys

import numpy as np
import torch

from _common import ROOT, Timer, shared_path

from cnnviz.checkpoints import load_checkpoint
from cnnviz.data import load_dataset
from cnnviz.inspect.feature_maps import feature_maps
from cnnviz.inspect.features import extract_features
from cnnviz.inspect.filters import first_layer_filters


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "checkpoints" / "cifar10_fast")
    ckpt = load_checkpoint(path)
    pre, norm = ckpt.meta.preprocess, ckpt.meta.normalization
    root = shared_path("cifar10")
    images = np.concatenate([load_dataset(root, s, pre).images for s in ("train", "test")])
    print(f"{ckpt.name}: {torch.get_num_threads()} threads")
    extract_features(ckpt.model, images[:1000], norm)  # warm-up
    with Timer() as t:
        feats = extract_features(ckpt.model, images, norm)  # default batch size, as users get it
    print(f"penultimate features of {len(images):,} images: {feats.shape[1]}-d, {t.seconds:.1f} s "
          f"({len(images) / t.seconds:.0f} img/s)")
    one = images[0]
    times = {}
    for layer in ckpt.model.layer_names():
        feature_maps(ckpt.model, one, layer, norm)
        runs = []
        for _ in range(5):
            with Timer() as t:
                feature_maps(ckpt.model, one, layer, norm)
            runs.append(t.seconds * 1000)
        times[layer] = statistics.median(runs)
    worst = max(times, key=times.get)
    print(f"feature maps of one image: median over layers {statistics.median(times.values()):.1f} ms, "
          f"slowest {worst} {times[worst]:.1f} ms")
    with Timer() as t:
        first_layer_filters(ckpt.model)
    print(f"first-layer filters: {t.seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
