"""Feature maps: what one layer outputs for an image, channel by channel, strongest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..hooks import capture, model_view, resolve_layers
from ..runtime import device_of
from ..inputs import Normalization, to_input

__all__ = ["FeatureMaps", "channel_grid", "check_images", "feature_maps", "tile"]


@dataclass(frozen=True, eq=False)
class FeatureMaps:
    """One layer's output for ``N`` images.

    * ``maps``: ``(N, C, h, w) float32``; a layer without spatial layout (a ``Linear``, output
      ``(N, D)``) gives ``(N, D, 1, 1)``.
    * ``score``: ``(N, C) float32``, each channel's mean activation over its ``h * w``
      positions (the raw output: may be negative before an activation function).
    * ``order``: ``(N, C) int64``, channel indices by ``score``, highest first (ties by index).
    * ``layer``: the layer name; ``shape``: the layer's raw output shape, e.g. ``(N, C, h, w)``.
    """

    maps: np.ndarray
    score: np.ndarray
    order: np.ndarray
    layer: str
    shape: tuple[int, ...]

    @property
    def num_channels(self) -> int:
        return int(self.maps.shape[1])

    def rank(self, channel: int, index: int = 0) -> int:
        """``channel``'s place by mean activation for image ``index``: 1 for the strongest."""
        return int(np.flatnonzero(self.order[index] == channel)[0]) + 1


def check_images(images: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Validate ``(H, W, 3)`` or ``(N, H, W, 3) uint8`` images; returns them batched."""
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
    shape, dtype = tuple(images.shape), images.dtype
    if len(shape) not in (3, 4) or shape[-1] != 3:
        raise ValueError(f"expected an image (H, W, 3) or a batch (N, H, W, 3), got shape {shape}")
    is_uint8 = dtype == torch.uint8 if isinstance(images, torch.Tensor) else images.dtype == np.uint8
    if not is_uint8:
        raise ValueError(f"expected uint8 pixels 0-255, got {dtype}: convert with "
                         "(x * 255).round().astype(np.uint8) for images in [0, 1]")
    return images[None] if len(shape) == 3 else images


def feature_maps(model: nn.Module, images: np.ndarray | torch.Tensor, layer: str, norm: Normalization,
                 device: torch.device | str | None = None) -> FeatureMaps:
    """Run ``images`` (``(H, W, 3)`` or ``(N, H, W, 3) uint8``) through ``model`` in eval mode
    without gradients and return ``layer``'s output as :class:`FeatureMaps`.

    ``device`` defaults to the model's; the model is not moved or changed: an eval-mode view
    of it runs (:func:`~cnnviz.hooks.model_view`).
    """
    resolve_layers(model, layer)  # a clear error before any work
    images = check_images(images)
    dev = torch.device(device) if device is not None else device_of(model)
    x = to_input(images, norm, dev)
    view = model_view(model)
    with torch.no_grad(), capture(view, layer) as acts:
        view(x)
    if layer not in acts:
        raise RuntimeError(f"layer {layer!r} did not run in {type(model).__name__}'s forward pass")
    out = acts[layer]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"layer {layer!r} returns {type(out).__name__}, not a tensor")
    shape = tuple(out.shape)
    out = out.float()
    if out.ndim == 2:
        out = out[:, :, None, None]
    elif out.ndim != 4:
        raise ValueError(f"layer {layer!r} outputs shape {shape}: expected (N, C, h, w) or (N, D)")
    maps = out.cpu().numpy()
    score = maps.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
    order = np.argsort(-score, axis=1, kind="stable").astype(np.int64)
    return FeatureMaps(maps=maps, score=score, order=order, layer=layer, shape=shape)


def tile(arrays: np.ndarray, cols: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Lay ``(n, h, w)`` arrays out row by row, ``cols`` per row, ``gap`` cells of ``fill``
    between tiles and after a short last row: ``(rows*(h+gap)-gap, cols*(w+gap)-gap)``, the
    input's dtype (float32 for the default NaN fill)."""
    n, h, w = arrays.shape
    cols = max(1, min(int(cols), n)) if n else 1
    rows = max(1, -(-n // cols))
    dtype = np.result_type(arrays.dtype, fill)  # a Python scalar fill keeps int16 int16
    if np.issubdtype(dtype, np.floating):
        dtype = np.float32
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), fill, dtype=dtype)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = arrays[i]
    return out


def grid_cols(n: int, cols: int | None = None) -> int:
    """Columns for ``n`` tiles: as given, else about square (wider than tall)."""
    return max(1, int(cols)) if cols else max(1, int(np.ceil(np.sqrt(n))))


def channel_grid(maps: np.ndarray, order: np.ndarray | None = None, max_channels: int = 64,
                 cols: int | None = None, gap: int = 1,
                 normalize: Literal["per_channel", "shared", "none"] = "per_channel") -> np.ndarray:
    """One image's maps ``(C, h, w)`` as a grid, channels taken in ``order`` (default index
    order), at most ``max_channels`` of them: ``(rows*(h+gap)-gap, cols*(w+gap)-gap) float32``
    with NaN in the gaps (a heatmap leaves them blank).

    ``normalize``: ``"per_channel"`` min-max scales each tile to ``[0, 1]`` (a constant map
    gives 0); ``"shared"`` scales all tiles with one min-max; ``"none"`` keeps raw values.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"expected one image's maps (C, h, w), got shape {maps.shape}")
    idx = np.arange(len(maps)) if order is None else np.asarray(order)
    chosen = maps[idx[:max_channels]]
    if normalize == "per_channel":
        lo = chosen.min(axis=(1, 2), keepdims=True)
        span = chosen.max(axis=(1, 2), keepdims=True) - lo
        chosen = np.where(span > 0, (chosen - lo) / np.where(span > 0, span, 1), 0.0)
    elif normalize == "shared" and chosen.size:
        lo, span = chosen.min(), chosen.max() - chosen.min()
        chosen = (chosen - lo) / span if span > 0 else np.zeros_like(chosen)
    elif normalize not in ("per_channel", "shared", "none"):
        raise ValueError(f"unknown normalize {normalize!r}: use per_channel, shared or none")
    return tile(chosen.astype(np.float32), grid_cols(len(chosen), cols), gap)
