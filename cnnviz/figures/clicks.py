"""Choosing by clicking: an input image enlarged for clicking, the input pixel under a click, the
choice marked on the enlarged image, the map position under a pixel, and every channel's value
there as a bar chart strongest first.

A click arrives in the coordinates of the image as the browser shows it (any size); the input
pixel under it is found by scaling back, so the mapping is exact whatever the display width as
long as the shown image is the whole input enlarged (:func:`enlarge` repeats each pixel a whole
number of times, so every input pixel is a square block of the shown image)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ..inspect.feature_maps import FeatureMaps
from ..inspect.receptive_field import LayerRF, nearest_unit

__all__ = ["channels_at", "channels_at_figure", "click_pixel", "dot", "enlarge", "map_position", "outline"]

RED = (230, 30, 30)


def enlarge(image: np.ndarray, width: int = 320) -> tuple[np.ndarray, int]:
    """``image`` (``(H, W, 3) uint8``) enlarged by nearest neighbour by the smallest whole factor
    that makes it at least ``width`` pixels wide (1 for an image that is already as wide).
    Returns ``(enlarged image, factor)``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[1] < 1:
        raise ValueError(f"expected an image (H, W, C), got shape {image.shape}")
    factor = max(1, -(-int(width) // image.shape[1]))
    return image.repeat(factor, axis=0).repeat(factor, axis=1), factor


def click_pixel(x: float, y: float, shown_width: float, shown_height: float,
                size: int | tuple[int, int]) -> tuple[int, int] | None:
    """The input pixel ``(row, column)`` under a click at ``(x, y)`` on the image as shown,
    ``shown_width`` x ``shown_height`` display pixels, of an input of ``size`` (``S`` or
    ``(H, W)``): ``floor(y * H / shown_height)``, ``floor(x * W / shown_width)``. A click on the
    far edge counts as the last pixel; None for a click outside the image or an image not shown."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    if not (shown_width > 0 and shown_height > 0) or not (0 <= x <= shown_width and 0 <= y <= shown_height):
        return None
    row, col = math.floor(y * h / shown_height), math.floor(x * w / shown_width)
    return min(row, h - 1), min(col, w - 1)


def map_position(y: int, x: int, image_size: int | tuple[int, int], out_size: tuple[int, int],
                 rf: LayerRF | None = None) -> tuple[int, int]:
    """The position ``(row, column)`` of a layer's ``out_size`` map that lies under input pixel
    ``(y, x)``: the unit whose receptive field is centred nearest it (:func:`nearest_unit`), or,
    without the layer's receptive field ``rf`` (a model the geometry cannot follow), the map cell
    at the same fraction of the image (``floor(y * h / H)``)."""
    if rf is not None:
        return nearest_unit(rf, y, x)
    hi, wi = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else image_size
    h, w = out_size
    return min(h - 1, max(0, y * h // hi)), min(w - 1, max(0, x * w // wi))


def outline(big: np.ndarray, box: tuple[int, int, int, int], factor: int,
            color: tuple[int, int, int] = RED, thickness: int | None = None) -> np.ndarray:
    """A copy of an :func:`enlarge`-d image with the input ``box`` (``(top, left, bottom,
    right)``, bottom/right exclusive, input pixels) outlined inside its edge; ``thickness`` in
    shown pixels defaults to ``factor // 5`` (at least 1)."""
    out = big.copy()
    t = max(1, factor // 5) if thickness is None else int(thickness)
    top, left, bottom, right = (v * factor for v in box)
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, out.shape[0]), min(right, out.shape[1])
    if bottom <= top or right <= left:
        return out
    out[top:min(top + t, bottom), left:right] = color
    out[max(bottom - t, top):bottom, left:right] = color
    out[top:bottom, left:min(left + t, right)] = color
    out[top:bottom, max(right - t, left):right] = color
    return out


def dot(big: np.ndarray, y: float, x: float, factor: int, color: tuple[int, int, int] = RED,
        radius: int | None = None) -> np.ndarray:
    """A copy of an :func:`enlarge`-d image with a filled square centred on input point
    ``(y, x)`` (pixel centres at integers, so fractional points such as a unit's centre fall
    between pixels); ``radius`` in shown pixels defaults to ``factor // 3`` (at least 2). A point
    off the image leaves it unchanged."""
    out = big.copy()
    r = max(2, factor // 3) if radius is None else int(radius)
    cy, cx = (y + 0.5) * factor, (x + 0.5) * factor
    top, left = max(0, round(cy - r)), max(0, round(cx - r))
    bottom, right = min(out.shape[0], round(cy + r)), min(out.shape[1], round(cx + r))
    if bottom > top and right > left:
        out[top:bottom, left:right] = color
    return out


def channels_at(fm: FeatureMaps, y: int, x: int, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every channel of image ``index`` of ``fm`` at map position ``(y, x)``: ``(channels,
    values)``, strongest first (ties by channel number)."""
    if not 0 <= index < len(fm.maps):
        raise ValueError(f"image index {index} out of range: {len(fm.maps)} images")
    h, w = fm.maps.shape[2:]
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"position ({y}, {x}) is outside {fm.layer}'s {h}x{w} map")
    values = fm.maps[index, :, y, x]
    order = np.argsort(-values, kind="stable")
    return order, values[order]


def channels_at_figure(fm: FeatureMaps, y: int, x: int, max_channels: int = 64,
                       highlight: int | None = None, index: int = 0, where: str = "") -> go.Figure:
    """Bars of every channel's raw value at map position ``(y, x)`` of image ``index``, strongest
    first, at most ``max_channels``; ``highlight`` (the enlarged channel) in red. ``where``
    describes the position in the title (e.g. the input pixel clicked)."""
    order, values = channels_at(fm, y, x, index)
    order, values = order[:max_channels], values[:max_channels]
    colors = ["#c44e52" if c == highlight else "#4c72b0" for c in order]
    fig = go.Figure(go.Bar(
        x=[str(c) for c in order], y=values, marker_color=colors,
        hovertemplate="channel %{x}: %{y:.3g}<extra></extra>"))
    c, h, w = fm.maps.shape[1:]
    shown = f"the strongest {len(order)} of {c}" if len(order) < c else f"all {c}"
    fig.update_layout(
        title=f"{fm.layer} at map position ({y}, {x}) of {h}x{w}{where}<br><sup>{shown} channels, strongest "
              "first" + (f"; red: channel {highlight}" if highlight in order else "") + "</sup>",
        xaxis=dict(title="channel", type="category"), yaxis_title="activation",
        margin=dict(l=10, r=10, t=60, b=10), height=300, bargap=0.15)
    return fig
