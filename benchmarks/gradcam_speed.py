"""Grad-CAM for one image: cnnviz's ``attribute(..., methods=("grad_cam",))`` against the
``grad-cam`` package (``pytorch_grad_cam.GradCAM``) on the same model, layer, image and class.

    pip install grad-cam   # benchmark only; not a cnnviz dependency
    python benchmarks/gradcam_speed.py [--runs 50] [--device cpu]

Randomly initialised models (speed does not depend on the weights). Each side is timed end to
end from its own input: cnnviz from the uint8 image (normalisation included), pytorch_grad_cam
from the normalised tensor with its GradCAM object built once outside the loop. Prints the
median over ``--runs`` calls after warm-up, the ratio, and how close the two maps are.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from cnnviz.inputs import Normalization, to_input
from cnnviz.inspect.attribution import attribute
from cnnviz.models import get_model
from cnnviz.runtime import pick_device, set_threads

NORM = Normalization((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
CASES = [("cifar_fast", 32, "block3.conv2"), ("alexnet_style", 128, None)]


def median_ms(fns: list[Callable[[], object]], runs: int, warmup: int = 3) -> list[float]:
    """Median wall time in ms of each function, calls interleaved so that background load on
    the machine hits all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [1000 * statistics.median(ts) for ts in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    threads = set_threads()
    device = pick_device(args.device)
    print(f"torch {torch.__version__}, {device}, {threads} threads, median of {args.runs} interleaved runs")
    rng = np.random.default_rng(0)
    for arch, size, layer in CASES:
        torch.manual_seed(0)
        model = get_model(arch, 10, size).to(device).eval()
        layer = layer or [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][-1]
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        target = 3

        def ours() -> np.ndarray:
            return attribute(model, img, NORM, target, methods=("grad_cam",), layer=layer)["grad_cam"].map

        x = to_input(img, NORM, device)
        with GradCAM(model=model, target_layers=[model.get_submodule(layer)]) as cam:
            def theirs() -> np.ndarray:
                return cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]

            t_ours, t_theirs = median_ms([ours, theirs], args.runs)
            a, b = ours(), theirs()
        model.zero_grad(set_to_none=True)  # pytorch_grad_cam calls .backward(): drop its grads
        corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        print(f"{arch} {size}px layer {layer}: cnnviz {t_ours:.2f} ms, pytorch_grad_cam {t_theirs:.2f} ms, "
              f"ratio cnnviz/theirs {t_ours / t_theirs:.2f}; maps: max |diff| {np.abs(a - b).max():.3f}, "
              f"corr {corr:.4f}")


if __name__ == "__main__":
    main()
