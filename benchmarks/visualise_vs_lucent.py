"""Feature visualisation of the same units with cnnviz and with torch-lucent, in the same run:
seconds per unit and the activation each final image reaches (measured by the model without
any transform, so the two are compared on what the picture itself does), plus a side-by-side PNG.

torch-lucent is a reference, not a dependency: install it where it installs (it needs kornia,
decorator and IPython), e.g. ``pip install torch-lucent kornia decorator ipython``.

    python benchmarks/visualise_vs_lucent.py [checkpoints/cifar10_cnn] [--layer block2.conv1]
        [--channels 0,5,17,42] [--steps 256] [--out benchmarks/out/visualise_vs_lucent.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from _common import ROOT, Timer

from cnnviz.checkpoints import load_checkpoint
from cnnviz.figures.units import patch_grid
from cnnviz.hooks import model_view
from cnnviz.inspect.visualise import visualise
from cnnviz.runtime import resolve_runtime


class _Normalised(nn.Module):
    """The model behind its own input normalisation, as lucent feeds images in [0, 1]."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _reached(model: nn.Module, layer: str, channel: int, images01: np.ndarray, norm) -> float:
    """Mean activation of ``channel`` of ``layer`` for one ``(S, S, 3)`` image in [0, 255]."""
    store = {}
    view = model_view(model)
    h = view.get_submodule(layer).register_forward_hook(lambda m, i, o: store.__setitem__("o", o))
    x = torch.from_numpy(images01).permute(2, 0, 1)[None].float() / 255
    mean, std = torch.tensor(norm.mean).view(1, 3, 1, 1), torch.tensor(norm.std).view(1, 3, 1, 1)
    with torch.no_grad():
        view((x - mean) / std)
    h.remove()
    return float(store["o"][0, channel].float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "cifar10_cnn"))
    ap.add_argument("--layer", default="block2.conv1")
    ap.add_argument("--channels", default="0,5,17,42")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "visualise_vs_lucent.png"))
    a = ap.parse_args()
    try:
        import kornia  # noqa: PLC0415
        from lucent.optvis import param, render, transform  # noqa: PLC0415
    except ImportError as e:
        sys.exit(f"torch-lucent is not importable ({e}); pip install torch-lucent kornia decorator ipython")
    # lucent 0.1.8 calls kornia's old top-level names, which newer kornia keeps under kornia.geometry
    for name in ("get_rotation_matrix2d", "warp_affine"):
        if not hasattr(kornia, name):
            setattr(kornia, name, getattr(kornia.geometry.transform, name))
    ckpt = load_checkpoint(a.checkpoint, runtime=resolve_runtime("cpu", "fp32", False))
    model, norm, size = ckpt.model, ckpt.meta.normalization, ckpt.meta.input_size
    channels = [int(c) for c in a.channels.split(",")]
    print(f"{ckpt.name} {a.layer}, channels {channels}, {size} px, {a.steps} steps, CPU fp32, "
          f"{torch.get_num_threads()} threads")

    with Timer() as ours_t:
        ours = visualise(model, a.layer, channels, norm, size, steps=a.steps, runtime=ckpt.runtime)

    wrapped = _Normalised(model_view(model), norm.mean, norm.std).eval()
    name = "model_" + a.layer.replace(".", "_")
    runs = {}
    # lucent's default enlarges inputs under 224 px to 224 before the model; fixed_image_size keeps 32
    for label, fixed in (("torch-lucent (default: the model sees it at 224 px)", None),
                         (f"torch-lucent (fixed_image_size={size})", size)):
        theirs = []
        with Timer() as t:
            for c in channels:
                torch.manual_seed(0)
                imgs = render.render_vis(wrapped, f"{name}:{c}", lambda: param.image(size, fft=True, decorrelate=True),
                                         transforms=transform.standard_transforms, thresholds=(a.steps,),
                                         preprocess=False, progress=False, show_image=False, fixed_image_size=fixed)
                theirs.append((np.clip(imgs[-1][0], 0, 1) * 255).round().astype(np.uint8))
        runs[label] = (theirs, t.seconds)
    print(f"cnnviz: {ours_t.seconds / len(channels):.2f} s a unit (all {len(channels)} in one batch)")
    for label, (_, secs) in runs.items():
        print(f"{label}: {secs / len(channels):.2f} s a unit (one at a time), {secs / ours_t.seconds:.2f}x cnnviz's time")
    for i, c in enumerate(channels):
        cells = [f"cnnviz {_reached(model, a.layer, c, ours.images[i], norm):.3f}"]
        cells += [f"{label.split(' (')[0]} {label.split('(')[1][:-1]}: {_reached(model, a.layer, c, imgs[i], norm):.3f}"
                  for label, (imgs, _) in runs.items()]
        print(f"channel {c}: mean activation of the final image at {size} px: " + "; ".join(cells))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = list(ours.images) + [im for imgs, _ in runs.values() for im in imgs]
    Image.fromarray(patch_grid(rows, cols=len(channels), cell=128)).save(out)
    print(f"rows: cnnviz, then {', then '.join(runs)}: {out}")


if __name__ == "__main__":
    main()
