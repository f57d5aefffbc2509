"""Feature visualisation: the image that most excites a channel (or a class logit), found by
gradient ascent from noise, in the way Lucid does it (Olah et al., Distill 2017):

* the image is parametrised in the Fourier domain, with each frequency scaled down by its
  magnitude, so the optimiser is not drawn to high-frequency noise;
* its colours are decorrelated (optimised in a whitened colour space, mapped back by the
  square root of natural images' colour covariance) and squashed to ``[0, 1]`` by a sigmoid;
* every step sees it padded, jittered, scaled and rotated at random, so only patterns that
  survive those changes grow.

All channels asked for are optimised together as one batch (one image each), seeded, so the
same call gives the same images. The model is not changed: a private view runs with gradients
for the input only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..array_cache import load_arrays, save_arrays
from ..data import default_cache_dir
from ..hooks import model_view, resolve_layers
from ..inputs import Normalization
from ..runtime import Progress, Runtime, check_runtime, progress_reporter

__all__ = ["Visualisation", "cached_visualisation", "visualise"]

_FORMAT = "cnnviz-vis/1"
# Square root of the colour covariance of natural images (ImageNet), as Lucid uses it.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


@dataclass(frozen=True, eq=False)
class Visualisation:
    """``images``: ``(n, S, S, 3) uint8``, one per target; ``objective``: ``(n,)`` the final
    mean activation (or logit) each image reaches, without the random transforms."""

    layer: str
    targets: tuple[int, ...]
    images: np.ndarray
    objective: np.ndarray
    steps: int
    seed: int


def _frequencies(size: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class _Image(nn.Module):
    """``n`` images of ``size`` px: scaled Fourier coefficients (``fourier``) or plain pixels,
    in decorrelated colour (``decorrelate``) or plain RGB, squashed to ``[0, 1]``."""

    def __init__(self, n: int, size: int, generator: torch.Generator, fourier: bool = True,
                 decorrelate: bool = True, decay: float = 1.0):
        super().__init__()
        self.size, self.fourier, self.decorrelate = size, fourier, decorrelate
        if fourier:
            freqs = _frequencies(size)
            self.register_buffer("scale", 1.0 / torch.clamp(freqs, min=1.0 / size) ** decay / 4)
            shape = (n, 3, size, size // 2 + 1)
            self.spectrum = nn.Parameter(torch.complex(torch.randn(shape, generator=generator),
                                                       torch.randn(shape, generator=generator)) * 0.01)
        else:
            self.pixels = nn.Parameter(torch.randn((n, 3, size, size), generator=generator) * 0.01)

    def forward(self) -> torch.Tensor:
        """``(n, 3, S, S)`` in ``[0, 1]``."""
        if self.fourier:
            x = torch.fft.irfft2(self.spectrum * self.scale, s=(self.size, self.size), norm="ortho")
        else:
            x = self.pixels
        if self.decorrelate:
            x = torch.einsum("nchw,dc->ndhw", x, _COLOR_SQRT.to(x.device))
        return torch.sigmoid(x)


def _robust(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Pad, jitter, scale and rotate each image at random (Lucid's transforms, sized to the
    image: at 224 px about 12 px of padding and 8 px of jitter; at 32 px a few pixels)."""
    n, _, s, _ = x.shape
    pad = max(1, round(s * strength * 0.05))
    x = F.pad(x, (pad,) * 4, mode="constant", value=0.5)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10) * strength
    zoom = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1 * strength
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * pad / x.shape[-1])
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x[..., pad:pad + s, pad:pad + s]


def visualise(model: nn.Module, layer: str | None, targets: Sequence[int], norm: Normalization, size: int,
              steps: int = 256, lr: float = 0.05, seed: int = 0, robustness: float = 1.0,
              fourier: bool = True, decorrelate: bool = True, runtime: Runtime | None = None,
              progress: Progress = False) -> Visualisation:
    """The images that maximise the mean activation of each of ``targets`` (channels of
    ``layer``; with ``layer=None``, class logits), all in one batched optimisation of ``steps``
    Adam steps at ``lr`` from seeded noise. ``robustness`` scales the random transforms (0:
    none); ``fourier=False``/``decorrelate=False`` optimise plain pixels / plain RGB instead
    of Lucid's parametrisation (for comparisons and known-answer checks)."""
    targets = [int(t) for t in targets]
    if not targets:
        raise ValueError("nothing to visualise: give at least one channel or class")
    if layer is not None:
        resolve_layers(model, layer)
    rt = check_runtime(model, runtime)
    gen = torch.Generator().manual_seed(seed)
    view = model_view(model)
    image = _Image(len(targets), size, gen, fourier, decorrelate).to(rt.device)
    opt = torch.optim.Adam(image.parameters(), lr=lr)
    idx = torch.tensor(targets, device=rt.device)
    mean = torch.tensor(norm.mean, device=rt.device).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, device=rt.device).view(1, 3, 1, 1)
    store: dict = {}
    handle = None
    if layer is not None:
        handle = view.get_submodule(layer).register_forward_hook(lambda m, i, o: store.__setitem__("out", o))

    def objective(x01: torch.Tensor) -> torch.Tensor:
        with rt.autocast():
            logits = view(((x01 - mean) / std).contiguous(memory_format=rt.memory_format))
        out = (store.pop("out") if layer is not None else logits).float()
        if out.ndim == 4:
            out = out.mean(dim=(2, 3))
        if idx.max() >= out.shape[1]:
            raise ValueError(f"{layer or 'the output'} has {out.shape[1]} channels; no channel {int(idx.max())}")
        return out.gather(1, idx[:, None])[:, 0]

    update, close = progress_reporter(progress, steps, "visualising")
    try:
        for step in range(steps):
            x = image()
            if robustness > 0:
                x = _robust(x, gen, robustness)
            loss = -objective(x).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            update(step + 1, steps)
        with torch.no_grad():
            final = image()
            reached = objective(final)
    finally:
        close()
        if handle is not None:
            handle.remove()
    pixels = (final.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return Visualisation(layer or "logits", tuple(targets), pixels, reached.detach().cpu().numpy(), steps, seed)


def cached_visualisation(ckpt, layer: str | None, targets: Sequence[int], steps: int = 256, seed: int = 0,
                         cache_dir: str | os.PathLike | None = None, progress: Progress = False) -> Visualisation:
    """:func:`visualise` for a checkpoint at its input size, from the disk cache (keyed by
    checkpoint hash, layer, targets, steps and seed) when there, else computed and written
    atomically."""
    targets = [int(t) for t in targets]
    meta = {"format": _FORMAT, "checkpoint": ckpt.sha256, "layer": layer, "targets": targets, "steps": steps,
            "seed": seed, "size": ckpt.meta.input_size, "runtime": ckpt.runtime.describe()}
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / "visualise" / f"{ckpt.sha256[:16]}-{key}.npz"
    stored = load_arrays(path, meta)
    if stored is not None:
        return Visualisation(layer or "logits", tuple(targets), stored["images"], stored["objective"], steps, seed)
    vis = visualise(ckpt.model, layer, targets, ckpt.meta.normalization, ckpt.meta.input_size, steps=steps,
                    seed=seed, runtime=ckpt.runtime, progress=progress)
    save_arrays(path, meta, images=vis.images, objective=vis.objective)
    return vis
