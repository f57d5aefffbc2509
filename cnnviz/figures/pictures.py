"""Static pictures (``uint8`` RGB arrays) of maps and fields: what a page shows as an image
where an interactive figure would cost the browser more than it gives (one drawn Plotly figure
costs about as much as the rest of a page)."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..inspect.feature_maps import channel_grid, grid_cols
from .clicks import outline

__all__ = ["diverging_colours", "diverging_lut", "glow_image", "heat_image", "maps_image", "tile_at", "tile_clicked",
           "viridis_lut", "weights_image"]


def _lut(colours: Sequence[str]) -> np.ndarray:
    """``(256, 3) uint8``: a Plotly colour scale's colours (``#rrggbb`` or ``rgb(r, g, b)``),
    evenly spaced and interpolated (read-only)."""
    from plotly.colors import hex_to_rgb, unlabel_rgb  # noqa: PLC0415

    stops = np.array([hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c) for c in colours], np.float64)
    pos = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, 256)
    lut = np.stack([np.interp(t, pos, stops[:, k]) for k in range(3)], 1).round().astype(np.uint8)
    lut.setflags(write=False)
    return lut


@functools.cache
def viridis_lut() -> np.ndarray:
    """``(256, 3) uint8``: Plotly's Viridis colour scale, interpolated (read-only)."""
    from plotly.colors import sequential  # noqa: PLC0415

    return _lut(sequential.Viridis)


@functools.cache
def diverging_lut() -> np.ndarray:
    """``(256, 3) uint8``: Plotly's RdBu reversed (blue, white in the middle, red), interpolated
    (read-only); entry ``round((v + 1) * 127.5)`` colours a value ``v`` in ``[-1, 1]``."""
    from plotly.colors import diverging  # noqa: PLC0415

    return _lut(diverging.RdBu[::-1])


def diverging_colours(values: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """``uint8`` RGB (shape ``values.shape + (3,)``) of ``values`` on :func:`diverging_lut` over
    ``[-peak, peak]``: blue below 0, white at 0, red above; beyond ``peak`` clipped (a ``peak``
    of 0 counts as 1)."""
    t = np.clip(np.asarray(values, np.float64) / (peak or 1.0), -1, 1)
    return diverging_lut()[np.rint((t + 1) * 127.5).astype(np.uint8)]


def maps_image(maps: np.ndarray, cols: int | None = None, tile_px: int = 48,
               gap_color: Sequence[int] = (255, 255, 255), gap: int | None = None) -> np.ndarray:
    """Channel maps ``(k, h, w)`` as one ``uint8`` RGB picture: tiles in a grid (about square
    unless ``cols``), each min-max scaled on its own and coloured with Viridis, enlarged to
    about ``tile_px`` pixels a side by repeating pixels; ``gap`` pixels (default a quarter of
    the enlargement, at least 1) in ``gap_color`` between tiles."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3 or not len(maps):
        raise ValueError(f"expected maps (k, h, w) with k >= 1, got shape {maps.shape}")
    h, w = maps.shape[1:]
    scale = max(1, int(round(tile_px / max(h, w))))
    big = np.repeat(np.repeat(maps, scale, axis=1), scale, axis=2)
    grid = channel_grid(big, max_channels=len(maps), cols=grid_cols(len(maps), cols),
                        gap=max(1, scale // 4) if gap is None else int(gap))
    gaps = np.isnan(grid)
    rgb = viridis_lut()[np.clip(np.nan_to_num(grid) * 255, 0, 255).astype(np.uint8)]
    rgb[gaps] = np.asarray(gap_color, np.uint8)
    return rgb


def heat_image(z: np.ndarray, width: int = 320, mark: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, int, float, float]:
    """One map ``(h, w)`` coloured with Viridis from its minimum (dark) to its maximum (yellow)
    and enlarged by repeating pixels to at least ``width`` px: ``(picture, factor, lo, hi)``.
    A constant map is all dark. ``mark``: a map position ``(row, column)`` outlined in red."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or not z.size:
        raise ValueError(f"expected one map (h, w), got shape {z.shape}")
    lo, hi = float(z.min()), float(z.max())
    t = (z - lo) / (hi - lo) if hi > lo else np.zeros_like(z)
    factor = max(1, -(-width // max(z.shape)))
    rgb = viridis_lut()[np.clip(t * 255, 0, 255).round().astype(np.uint8)]
    big = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    if mark is not None:
        big = outline(big, (mark[0], mark[1], mark[0] + 1, mark[1] + 1), factor)
    return big, factor, lo, hi


def glow_image(image: np.ndarray, field: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """``image`` (``(H, W, 3) uint8``) with ``field`` (``(H, W)``, e.g. a gradient magnitude)
    laid over it scaled to its maximum: transparent at zero, through orange to opaque yellow at
    the maximum times ``alpha`` (the colours of the receptive-field figure's glow)."""
    image = np.asarray(image)
    field = np.asarray(field, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3 or field.shape != image.shape[:2]:
        raise ValueError(f"expected an image (H, W, 3) and a field (H, W), got {image.shape} and {field.shape}")
    peak = float(field.max())
    t = np.clip(field / peak, 0, 1) if peak > 0 else np.zeros_like(field)
    # 0 -> transparent red, 0.5 -> orange at 0.6 opacity, 1 -> opaque yellow
    colour = np.stack([np.full_like(t, 255.0), np.interp(t, [0, 0.5, 1], [0, 80, 230]), np.zeros_like(t)], -1)
    a = (alpha * np.interp(t, [0, 0.5, 1], [0, 0.6, 1]))[..., None]
    return (image.astype(np.float32) * (1 - a) + colour * a).round().clip(0, 255).astype(np.uint8)


def weights_image(weights: np.ndarray, cell: int = 16, gap: int = 8) -> np.ndarray:
    """One kernel's weights per input channel ``(C, kh, kw)`` in ``[-1, 1]`` (as
    ``channel_images`` gives them) side by side as one ``uint8`` RGB picture: each weight a
    ``cell``-pixel square coloured on :func:`diverging_lut` (red excites, blue inhibits, white
    is 0), ``gap`` white pixels between channels."""
    w = np.asarray(weights, np.float32)
    if w.ndim != 3 or not w.size:
        raise ValueError(f"expected weights (C, kh, kw), got shape {w.shape}")
    rgb = diverging_colours(w)  # (C, kh, kw, 3)
    big = rgb.repeat(cell, axis=1).repeat(cell, axis=2)
    c, kh, kw = w.shape
    out = np.full((kh * cell, c * kw * cell + (c - 1) * gap, 3), 255, np.uint8)
    for i in range(c):
        out[:, i * (kw * cell + gap): i * (kw * cell + gap) + kw * cell] = big[i]
    return out


def tile_at(grid_shape: tuple[int, ...], n: int, cols: int, gap: int, x: float, y: float) -> int | None:
    """Which of the ``n`` tiles of a grid picture of ``grid_shape`` lies under its pixel
    ``(x, y)``: the grid is laid out ``cols`` per row with ``gap``-pixel separators and equal
    tiles (``rows * (tile + gap) - gap`` pixels, as :func:`maps_image`, ``grid_image`` and
    ``patch_grid`` draw). None for a separator, an empty cell or outside the picture."""
    rows = -(-n // cols)
    if n <= 0 or not (0 <= x < grid_shape[1] and 0 <= y < grid_shape[0]):
        return None
    th, tw = (grid_shape[0] + gap) / rows - gap, (grid_shape[1] + gap) / cols - gap
    col, row = int(x // (tw + gap)), int(y // (th + gap))
    inside = x - col * (tw + gap) < tw and y - row * (th + gap) < th
    i = row * cols + col
    return i if inside and col < cols and i < n else None


def tile_clicked(click: dict | None, grid_shape: tuple[int, ...], n: int, cols: int, gap: int) -> int | None:
    """:func:`tile_at` for a click on the grid picture as the browser shows it, at any width:
    ``click`` holds ``x``, ``y`` and the shown ``width`` (streamlit-image-coordinates' value).
    None for no click, a separator or an empty cell."""
    if not click or not click.get("width"):
        return None
    scale = grid_shape[1] / click["width"]
    return tile_at(grid_shape, n, cols, gap, click["x"] * scale, click["y"] * scale)
