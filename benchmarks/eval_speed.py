"""Evaluation time of a checkpoint on the CIFAR-10 test set (10,000 images), with and
without its test-time augmentation.

    python benchmarks/eval_speed.py [checkpoints/cifar10_fast]
"""

from __future__ import annotations

import sys

from _common import ROOT, Timer, shared_path

from cnnviz.checkpoints import load_checkpoint
from cnnviz.data import load_dataset


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "checkpoints" / "cifar10_fast")
    ckpt = load_checkpoint(path)
    test = load_dataset(shared_path("cifar10"), "test", ckpt.meta.preprocess).relabel(ckpt.meta.classes)
    from cnnviz.evaluate import evaluate

    for tta in dict.fromkeys(("none", ckpt.meta.tta)):
        with Timer() as t:
            rep = evaluate(ckpt.model, test.images, test.labels, ckpt.meta.classes,
                           ckpt.meta.normalization, tta=tta)
        print(f"{ckpt.name} test, tta={tta}: accuracy {rep.accuracy:.4f}, "
              f"{t.seconds:.2f} s ({len(test) / t.seconds:.0f} img/s)")


if __name__ == "__main__":
    main()
