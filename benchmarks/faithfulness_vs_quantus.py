"""Deletion curves of cnnviz.inspect.faithfulness against Quantus's PixelFlipping, in one run:
the same model, images, targets and maps; max abs difference of the curves and the areas (asserted
within TOL, exit status 1 otherwise) and seconds for each, with the ratio ours / Quantus.

Quantus is a reference, not a dependency: install it (and the dependencies it lacks here) outside
the venv, then run with it on the path:

    .venv/bin/pip install --target /tmp/quantus_pkg --no-deps quantus opencv-python-headless \
        scikit-image lazy_loader cachetools
    PYTHONPATH=/tmp/quantus_pkg .venv/bin/python benchmarks/faithfulness_vs_quantus.py [--n 32] [--steps 16]

How PixelFlipping (quantus 0.6.0) is configured to compute our deletion curve:

* features: Quantus flips single values of the flattened ``(3, H, W)`` input; a ``(N, 1, H, W)``
  map is broadcast over the channels, so ``features_in_step = 3 * H * W / steps`` flips
  ``H * W / steps`` whole pixels per step (our ``round(k * H * W / steps)`` when that divides);
* order: Quantus sorts with ``np.argsort(-a)`` (not stable); we give it each pixel's rank in our
  order (ties by flattened index), which it can only order one way (the rank's three channel
  copies are adjacent whatever the sort). The raw maps are also run, to show whether ties mattered;
* baseline: ``perturb_baseline=0.0``, the normalised zero image (Quantus's "black" is the
  image's minimum, not zero); maps neither normalised nor made absolute (order unchanged anyway);
  ``softmax=True`` (Quantus appends ``nn.Softmax`` to the model);
* points: Quantus's curve has no unperturbed point, so it is our ``deletion[:, 1:]``; its area is
  ``np.trapz(dx=1)`` over those points. We compare our area with the trapezoid over our fractions
  of ``[p(image)] + Quantus's curve``, ``p(image)`` from a plain forward pass;
* its assertion that ``features_in_step`` divides ``H * W`` (not ``3 * H * W``) rejects 192 for a
  32x32 image although 16 steps of 192 cover the 3072 values exactly; a subclass skips only that
  assertion (in Monotonicity too). ``np.trapz`` (gone in NumPy 2.4) is aliased to ``np.trapezoid`` for Quantus.

Insertion: Quantus has no insertion curve. Its ``Monotonicity`` (Arya et al.) starts from the
baseline and adds features least important first, returns one boolean per image (is the curve
non-decreasing), and in 0.6.0 "adds" them with the same baseline-replacement function, so every
input it scores is the baseline itself (measured below); nothing there can be matched.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from torch import nn

from _common import Timer

from cnnviz.hooks import model_view
from cnnviz.inputs import Normalization, to_input
from cnnviz.inspect.attribution import attribution_maps
from cnnviz.inspect.faithfulness import baseline_maps, deletion_insertion
from cnnviz.models import get_model

TOL = 1e-5  # float32 probabilities; the two batch the same inputs differently
CIFAR = Normalization((0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616))


def _quantus():
    try:
        import quantus
    except ImportError as e:
        sys.exit(f"needs quantus ({e}); see the install command in this script's docstring")
    if not hasattr(np, "trapz"):  # NumPy 2.4 removed the old name Quantus calls
        np.trapz = np.trapezoid

    def skip_assertion(cls):  # skip only the H*W divisibility assertion
        return type(cls.__name__, (cls,), {"custom_preprocess": lambda self, **kwargs: None})

    return quantus, skip_assertion(quantus.PixelFlipping), skip_assertion(quantus.Monotonicity)


def _ranks(maps: np.ndarray) -> np.ndarray:
    """``(N, 1, H, W)``: minus each pixel's position in our order (descending, ties by index)."""
    n = len(maps)
    order = np.argsort(-maps.reshape(n, -1).astype(np.float64), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None], axis=1)
    return -rank.reshape(n, 1, *maps.shape[1:]).astype(np.float64)


class _Recorder(nn.Module):
    """The model, remembering the largest ``|input|`` it has seen."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.largest = model, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.largest = max(self.largest, float(x.abs().max()))
        return self.model(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2, help="timings: best of this many runs")
    args = ap.parse_args()
    quantus, PixelFlipping, Monotonicity = _quantus()
    torch.set_num_threads(min(2, torch.get_num_threads()))

    torch.manual_seed(0)
    size, steps = 32, args.steps
    model = get_model("cifar_fast", 10, size)
    images = np.random.default_rng(0).integers(0, 256, (args.n, size, size, 3), dtype=np.uint8)
    x = to_input(images, CIFAR)
    with torch.no_grad():
        model.prepare(x)  # the whitening stem's filters from these images
        p_image = torch.softmax(model_view(model)(x), 1)
    targets = p_image.argmax(1).numpy()
    p0 = p_image[torch.arange(args.n), torch.from_numpy(targets)].numpy()
    if (3 * size * size) % steps:
        sys.exit(f"--steps {steps} does not divide 3 * {size} * {size}: Quantus steps cannot match ours")
    fractions = np.arange(steps + 1) / steps
    print(f"cifar_fast (random init, seed 0), {args.n} random {size}x{size} images, targets = predictions, "
          f"{steps} steps; {torch.get_num_threads()} CPU threads; quantus {quantus.__version__}")

    deletion_insertion(model, images[:2], CIFAR, targets[:2], np.zeros((2, size, size)), steps=steps)  # warm-up
    failed = False
    for name in ("saliency", "random"):
        maps = (attribution_maps(model, images, CIFAR, targets, "saliency") if name == "saliency"
                else baseline_maps(images, "random", seed=0))
        flat = maps.reshape(len(maps), -1)
        ties = sum(len(r) - len(np.unique(r)) for r in flat)
        t_ours = []
        for _ in range(args.repeats):
            with Timer() as t:
                ours = deletion_insertion(model, images, CIFAR, targets, maps, steps=steps, batch_size=64)
            t_ours.append(t.seconds)
        metric = PixelFlipping(features_in_step=3 * size * size // steps, perturb_baseline=0.0, normalise=False,
                               abs=False, disable_warnings=True, display_progressbar=False)
        runs = {}
        for label, a in (("raw maps", maps[:, None].astype(np.float64)), ("ranks", _ranks(maps))):
            t_q = []
            for _ in range(args.repeats if label == "raw maps" else 1):
                with Timer() as t:
                    curve = np.asarray(metric(model=model_view(model), x_batch=x.numpy(), y_batch=targets,
                                              a_batch=a, channel_first=True, softmax=True, device="cpu",
                                              batch_size=64))
                t_q.append(t.seconds)
            runs[label] = (curve, min(t_q))
        print(f"\n{name} maps ({ties} tied pixel values in all):")
        for label, (curve, seconds) in runs.items():
            d_curve = np.abs(curve - ours.deletion[:, 1:]).max()
            area = np.trapezoid(np.concatenate([p0[:, None], curve], 1), fractions, axis=1)
            d_area = np.abs(area - ours.deletion_auc).max()
            q_auc = np.trapz(curve, dx=1, axis=1)
            ok = d_curve <= TOL and d_area <= TOL
            failed |= not ok
            print(f"  Quantus on {label:8s}: max |curve diff| {d_curve:.2e}, max |area diff| {d_area:.2e} "
                  f"(tolerance {TOL:.0e}: {'ok' if ok else 'EXCEEDED'}); Quantus's own AUC (dx=1, no p(image)) "
                  f"mean {q_auc.mean():.4f} = {steps} x ours - (p0 + p1)/2: "
                  f"{np.abs(q_auc - (steps * ours.deletion_auc - (p0 + ours.deletion[:, 1]) / 2)).max():.1e}")
        mine, seconds = min(t_ours), runs["raw maps"][1]
        per_input = (mine / (2 * (steps + 1))) / (seconds / steps)
        print(f"  time (best of {args.repeats}): ours {mine:.3f} s (deletion and insertion, {2 * (steps + 1)} "
              f"inputs per image), Quantus {seconds:.3f} s (deletion, {steps} inputs per image); ratio ours / "
              f"Quantus {mine / seconds:.2f}, per model input {per_input:.2f}")
        print(f"  ours: deletion AUC {ours.deletion_auc.mean():.4f} +- {ours.deletion_auc.std():.4f}, "
              f"insertion AUC {ours.insertion_auc.mean():.4f} +- {ours.insertion_auc.std():.4f}")

    # Insertion: what Quantus's Monotonicity feeds the model.
    rec = _Recorder(model_view(model)).eval()
    mono = Monotonicity(features_in_step=3 * size * size // steps, perturb_baseline=0.0, normalise=False,
                                abs=False, disable_warnings=True)
    verdict = mono(model=rec, x_batch=x.numpy(), y_batch=targets, a_batch=_ranks(maps), channel_first=True,
                   softmax=True, device="cpu")
    print(f"\nQuantus Monotonicity (random maps): {sum(map(bool, verdict))}/{len(verdict)} images 'monotonic'; "
          f"largest |input| it ever scored: {rec.largest:.3g} (0 = always the baseline image; the images "
          f"reach {float(x.abs().max()):.3g})")
    if failed:
        sys.exit(f"difference above tolerance {TOL:.0e}")


if __name__ == "__main__":
    main()
