"""Unit atlas costs against their baselines, in the same run:

* the peaks of every channel of one layer over CIFAR-10's training images, against the plain
  penultimate-feature pass over the same images (target: at most 1.5x);
* one knock-out (one channel zeroed) over 2,000 test images, against one evaluation pass
  (target: at most 2x; it is one pass with the channel zeroed plus the intact pass).

    python benchmarks/units_speed.py [checkpoints/cifar10_cnn] [--layer block2.conv1] [--n 50000]
"""

from __future__ import annotations

import argparse

from _common import ROOT, Timer, shared_path

from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.evaluate import predict_logits
from cnnviz.inspect.features import extract_features
from cnnviz.inspect.units import knocked_logits, knockout, unit_examples
from cnnviz.lecture import default_feature_layer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "cifar10_cnn"))
    ap.add_argument("--layer", default=None)
    ap.add_argument("--n", type=int, default=50_000, help="training images for the peaks pass")
    a = ap.parse_args()
    ckpt = load_checkpoint(a.checkpoint)
    layer = a.layer or default_feature_layer(ckpt)
    data = shared_path("cifar10")
    train = checkpoint_data(ckpt.meta, data, "train")
    test = checkpoint_data(ckpt.meta, data, "test")
    images = train.images[: a.n]
    norm, rt = ckpt.meta.normalization, ckpt.runtime
    print(f"{ckpt.name}, layer {layer}, {len(images):,} training images, {rt.describe()}")

    extract_features(ckpt.model, images[:1000], norm)  # warm up
    with Timer() as base:
        extract_features(ckpt.model, images, norm)
    with Timer() as units:
        ex = unit_examples(ckpt.model, images, layer, norm, rt)
    print(f"penultimate features: {base.seconds:.1f} s; peaks of all {ex.channels} channels of {layer}: "
          f"{units.seconds:.1f} s; ratio {units.seconds / base.seconds:.2f}x (target <= 1.5x)")

    held, labels = test.images[::5], test.labels[::5]  # 2,000 spread over the classes
    with Timer() as ev:
        predict_logits(ckpt.model, held, norm, rt)
    with Timer() as ko_only:
        knocked_logits(ckpt.model, held, layer, [0], norm, rt)
    with Timer() as ko:
        res = knockout(ckpt.model, held, labels, layer, [0], norm, rt)
    intact = predict_logits(ckpt.model, held, norm, rt)
    with Timer() as ko_cached:
        knockout(ckpt.model, held, labels, layer, [0], norm, rt, baseline=intact)
    print(f"evaluation pass over 2,000 test images: {ev.seconds:.2f} s; knocked-out pass: {ko_only.seconds:.2f} s "
          f"({ko_only.seconds / ev.seconds:.2f}x); full knock-out (intact + knocked, compared): {ko.seconds:.2f} s, "
          f"ratio {ko.seconds / ev.seconds:.2f}x (target <= 2x); with the intact logits already cached (as the "
          f"dashboard has them): {ko_cached.seconds:.2f} s, {ko_cached.seconds / ev.seconds:.2f}x; accuracy {res.accuracy_before:.4f} -> "
          f"{res.accuracy_after:.4f} with channel 0 zeroed")


if __name__ == "__main__":
    main()
