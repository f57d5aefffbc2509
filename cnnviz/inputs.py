"""From cached uint8 images to network input: normalisation, augmentation, test-time views."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

TTA = Literal["none", "flip", "flip_translate"]
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 luminance weights of R, G, B


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(x / 255 - mean) / std``; recorded in checkpoints."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(tuple(map(float, d["mean"])), tuple(map(float, d["std"])))

    @classmethod
    def fit(cls, images: np.ndarray, max_images: int = 10000) -> "Normalization":
        """Mean/std of ``(N, H, W, 3) uint8`` images, in [0, 1] units: of all of them, or of
        ``max_images`` spread evenly over the set (a folder sorted by class must not give the
        first classes' colours)."""
        pick = np.linspace(0, len(images) - 1, min(len(images), max_images)).round().astype(np.int64)
        x = images[pick].reshape(-1, 3).astype(np.float64) / 255.0
        std = np.maximum(x.std(0), 1e-3)  # a constant channel must not divide by zero
        return cls(tuple(x.mean(0).round(4).tolist()), tuple(std.round(4).tolist()))

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 3, H, W)`` -> ``[0, 1]``."""
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x * std + mean).clamp(0, 1)


def to_input(images: np.ndarray | torch.Tensor, norm: Normalization, device: torch.device | str = "cpu",
             memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """``(N, H, W, 3) uint8`` -> ``(N, 3, H, W) float32`` normalised, on ``device``."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim == 3:
        x = x[None]
    x = x.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    mean = torch.tensor(norm.mean, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(norm.std, device=x.device).view(1, 3, 1, 1) * 255
    return ((x - mean) / std).contiguous(memory_format=memory_format)


def random_translate(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of ``(N, C, H, W)`` by up to ``pad`` px (reflect padding)."""
    if pad <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    out = torch.empty_like(x)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            sel = torch.nonzero((shifts[0] == dy) & (shifts[1] == dx)).flatten().to(x.device)
            if len(sel):
                out[sel] = padded[sel, :, dy:dy + h, dx:dx + w]
    return out


def random_affine(x: torch.Tensor, scale: float, rotate: float, generator: torch.Generator) -> torch.Tensor:
    """Zoom each image of ``(N, C, H, W)`` by a factor in ``[1 - scale, 1 + scale]`` and rotate it
    by up to ``rotate`` degrees about its centre (bilinear, reflected border)."""
    if scale <= 0 and rotate <= 0:
        return x
    n = x.shape[0]
    zoom = 1 + scale * (2 * torch.rand(n, generator=generator) - 1)
    angle = torch.deg2rad(rotate * (2 * torch.rand(n, generator=generator) - 1))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_colour(x: torch.Tensor, norm: Normalization, saturation: float, gray_prob: float,
                  generator: torch.Generator) -> torch.Tensor:
    """Change the colour saturation of each normalised image of ``(N, 3, H, W)`` by a factor
    in ``[1 - saturation, 1 + saturation]``, and make it grey (factor 0) with probability
    ``gray_prob``: a blend with its luminance (ITU-R 601 weights, those of torchvision's
    ``rgb_to_grayscale``), clipped to the pixel range. Returns ``x`` itself when both are 0."""
    if saturation <= 0 and gray_prob <= 0:
        return x
    n = x.shape[0]
    factor = 1 + saturation * (2 * torch.rand(n, generator=generator) - 1)
    factor[torch.rand(n, generator=generator) < gray_prob] = 0
    mean = torch.tensor(norm.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1) * 255
    std = torch.tensor(norm.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1) * 255
    rgb = x * std + mean
    gray = (rgb * torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    f = factor.to(device=x.device, dtype=x.dtype).view(n, 1, 1, 1)
    return ((gray + f * (rgb - gray)).clamp(0, 255) - mean) / std


def mix_batch(x: torch.Tensor, kind: str, alpha: float, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix each image of ``(N, C, H, W)`` with another of the batch: ``(mixed, partner, lam)``.

    ``partner[i]`` is the index whose image (and label) was mixed into image ``i``; ``lam`` is
    the share of each image that is its own, drawn from Beta(alpha, alpha). "mixup" blends whole
    images (``lam * x + (1 - lam) * x[partner]``); "cutmix" pastes one box of the partner's
    image and sets ``lam`` to the exact share of pixels left outside it.
    """
    n, _, h, w = x.shape
    partner = torch.randperm(n, generator=generator).to(x.device)
    from scipy import stats  # imported here: scipy.stats takes seconds to import

    # the Beta draw from the caller's generator (torch.distributions would use the global one)
    lam = float(stats.beta.ppf(torch.rand((), generator=generator).item(), alpha, alpha))
    if kind == "mixup":
        return lam * x + (1 - lam) * x[partner], partner, lam
    if kind != "cutmix":
        raise ValueError(f"kind must be mixup or cutmix (got {kind!r})")
    cut = math.sqrt(1 - lam)
    bh, bw = int(round(h * cut)), int(round(w * cut))
    cy, cx = int(torch.randint(h, (), generator=generator)), int(torch.randint(w, (), generator=generator))
    y0, y1 = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, h)
    x0, x1 = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
    return out, partner, 1 - (y1 - y0) * (x1 - x0) / (h * w)


def tta_logits(model: torch.nn.Module, x: torch.Tensor, tta: TTA = "none") -> torch.Tensor:
    """Logits of ``model`` on ``x`` averaged over test-time views.

    ``flip``: mean of the image and its mirror. ``flip_translate``: half that, plus a quarter
    each of the same on the image shifted one pixel up-left and down-right.
    """
    if tta == "none":
        return model(x)

    def mirror(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model(v) + model(v.flip(-1)))

    out = mirror(x)
    if tta == "flip_translate":
        h, w = x.shape[-2:]
        p = F.pad(x, (1,) * 4, mode="reflect")
        shifted = 0.5 * (mirror(p[..., :h, :w]) + mirror(p[..., 2:2 + h, 2:2 + w]))
        out = 0.5 * out + 0.5 * shifted
    return out
