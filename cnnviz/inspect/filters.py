"""First-layer filters: the kernels that look at the RGB pixels, as images and numbers.

The first convolution's weights live in the same space as the input, so each filter can be
shown as a small colour image: channel 0 of the weights is red, 1 green, 2 blue (``to_input``
keeps the image's RGB order). Weights act on *normalised* inputs, so "red" here means the
network's normalised red channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import torch
from torch import nn

from .kernel_orientation import KernelOrientation, kernel_orientation, measurable
from .kernel_structure import KernelStructure, kernel_structure

__all__ = [
    "FilterSet", "NORMALIZATIONS", "channel_images", "first_conv_name", "first_layer_filters",
    "first_layer_filters_from_state",
]

FilterNorm = Literal["per_filter", "global"]

#: How each normalisation maps weights to ``[0, 1]``, worded for figure titles.
NORMALIZATIONS: dict[str, str] = {
    "per_filter": "each filter min-max scaled to [0, 1] on its own (shapes comparable, strength not)",
    "global": "one min-max scale shared by all filters (strength comparable: weak filters look grey)",
}


@dataclass(frozen=True, eq=False)
class FilterSet:
    """The first layer's filters.

    * ``images``: ``(C_out, kh, kw, 3) float32`` in ``[0, 1]``, RGB, normalised as ``normalize``
      says (a filter with one or two input channels is shown grey / padded with zeros).
    * ``weights``: ``(C_out, C_in, kh, kw) float32``, raw.
    * ``norms``: ``(C_out,) float32``, L2 norm of each filter.
    * ``colorfulness``: ``(C_out,) float32`` in ``[0, 1]``: the fraction of a filter's energy
      (sum of squared weights) *not* explained by its per-pixel mean over the input channels,
      ``sum((w - w.mean(channels))**2) / sum(w**2)``. 0 = colour-agnostic (the same weights on
      R, G and B: it sees brightness only); 2/3 = a filter on one channel only (for RGB);
      1 = colour-opponent (weights summing to zero over channels at every pixel, blind to
      brightness). An all-zero filter scores 0.
    * ``normalize``: ``"per_filter"`` or ``"global"``; ``normalization`` describes it in words.
    * ``structure``: :class:`~cnnviz.inspect.kernel_structure.KernelStructure` of the weights:
      per filter, how concentrated its energy is in a few spatial frequencies (0 = white noise).
    * ``orientation``: :class:`~cnnviz.inspect.kernel_orientation.KernelOrientation` of the
      weights (how much each filter responds to one orientation, and which), or None for
      kernels smaller than 3x3.
    """

    images: np.ndarray
    weights: np.ndarray
    norms: np.ndarray
    colorfulness: np.ndarray
    normalize: str
    normalization: str
    structure: KernelStructure
    orientation: KernelOrientation | None = None

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def in_channels(self) -> int:
        return int(self.weights.shape[1])

    @property
    def grey_oriented(self) -> int:
        """How many filters are oriented and see mostly brightness (``colorfulness`` below 1/3):
        the grey edge and grating detectors of AlexNet's figure 3 (0 without an orientation)."""
        if self.orientation is None:
            return 0
        return int((self.orientation.oriented & (self.colorfulness < 1 / 3)).sum())

    def order_by(self, key: Literal["norm", "color", "structure", "orientation"] = "norm") -> np.ndarray:
        """Filter indices ``(C_out,) int64``, largest ``norms`` (``"norm"``), ``colorfulness``
        (``"color"``), structure score (``"structure"``) or orientation selectivity
        (``"orientation"``, all 0 for kernels too small to measure) first; ties keep index order."""
        if key == "norm":
            score = self.norms
        elif key in ("color", "colorfulness"):
            score = self.colorfulness
        elif key == "structure":
            score = self.structure.scores
        elif key == "orientation":
            score = self.orientation.selectivity if self.orientation is not None else np.zeros(len(self))
        else:
            raise ValueError(f"unknown order key {key!r}: use 'norm', 'color', 'structure' or 'orientation'")
        return np.argsort(-score, kind="stable").astype(np.int64)


def _minmax(w: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    lo = w.min(axis=axes, keepdims=True)
    hi = w.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (w - lo) / np.where(span > 0, span, 1), 0.5).astype(np.float32)


def _as_weight(source: nn.Module | torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(source, nn.Conv2d):
        w = source.weight
    elif isinstance(source, nn.Module):
        if not hasattr(source, "first_conv"):
            raise TypeError(f"{type(source).__name__} has no first_conv: pass a cnnviz model, "
                            "an nn.Conv2d or a weight tensor (C_out, C_in, kh, kw)")
        w = source.first_conv.weight
    else:
        w = source
    w = w.detach().float().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w, dtype=np.float32)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights of shape (C_out, C_in, kh, kw), got {w.shape}")
    return np.array(w, dtype=np.float32)  # a copy: never a view of the model's parameter


def first_layer_filters(source: nn.Module | torch.Tensor | np.ndarray,
                        normalize: FilterNorm = "per_filter") -> FilterSet:
    """The first convolution's filters of a cnnviz model (its ``first_conv``), of a given
    ``nn.Conv2d``, or of a weight tensor ``(C_out, C_in, kh, kw)``.

    ``normalize="per_filter"`` min-max scales each filter (all its channels together) to
    ``[0, 1]``; ``"global"`` uses one scale for all filters. A constant filter maps to 0.5.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {normalize!r}: use one of {', '.join(NORMALIZATIONS)}")
    w = _as_weight(source)
    c_out, c_in = w.shape[:2]
    scaled = _minmax(w, (1, 2, 3) if normalize == "per_filter" else None)
    rgb = scaled.transpose(0, 2, 3, 1)  # (C_out, kh, kw, C_in)
    if c_in == 1:
        rgb = np.repeat(rgb, 3, axis=3)
    elif c_in == 2:
        rgb = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=3)
    elif c_in > 3:
        rgb = rgb[..., :3]
    flat = w.reshape(c_out, c_in, -1).astype(np.float64)
    energy = (flat**2).sum(axis=(1, 2))
    resid = ((flat - flat.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2))
    color = np.where(energy > 0, resid / np.where(energy > 0, energy, 1), 0.0)
    return FilterSet(
        images=np.ascontiguousarray(rgb, dtype=np.float32), weights=w,
        norms=np.sqrt(energy).astype(np.float32), colorfulness=color.astype(np.float32),
        normalize=normalize, normalization=NORMALIZATIONS[normalize], structure=kernel_structure(w),
        orientation=kernel_orientation(w) if measurable(w.shape) else None,
    )


def first_conv_name(model: nn.Module) -> str:
    """The submodule name of ``model.first_conv`` (e.g. ``"features.0"``)."""
    conv = getattr(model, "first_conv")
    for name, m in model.named_modules():
        if m is conv:
            return name
    raise ValueError(f"{type(model).__name__}.first_conv is not one of its submodules")


def first_layer_filters_from_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                                   normalize: FilterNorm = "per_filter") -> FilterSet:
    """First-layer filters from a state dict of ``model``'s architecture (e.g. a training
    snapshot from ``load_snapshots``), without loading it into the model."""
    key = f"{first_conv_name(model)}.weight"
    if key not in state_dict:
        some = ", ".join(list(state_dict)[:6])
        raise ValueError(f"the state dict has no {key!r} (it holds {some}, ...): is it for "
                         f"{type(model).__name__}?")
    return first_layer_filters(state_dict[key], normalize)


def channel_images(filters: FilterSet, index: int) -> np.ndarray:
    """Filter ``index``'s weights per input channel, ``(C_in, kh, kw) float32`` in ``[-1, 1]``:
    divided by the filter's largest absolute weight, so 0 stays 0 and channels compare."""
    if not 0 <= index < len(filters):
        raise ValueError(f"filter index {index} out of range: the layer has {len(filters)} filters")
    w = filters.weights[index]
    peak = float(np.abs(w).max())
    return (w / peak if peak > 0 else np.zeros_like(w)).astype(np.float32)
