"""Figures of first-layer filters, and a PNG-ready grid of small images."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..inspect.feature_maps import grid_cols
from ..inspect.filters import FilterSet, channel_images

__all__ = ["filter_channels_figure", "filter_grid_figure", "grid_image"]


def grid_image(images: np.ndarray, cols: int | None = None, scale: int = 8, gap: int = 2,
               background: int = 255) -> np.ndarray:
    """Tile ``(N, h, w, 3) float`` images in ``[0, 1]`` into one ``(H, W, 3) uint8`` picture:
    each image upscaled ``scale`` times by nearest neighbour, ``gap`` pixels of ``background``
    between them, ``cols`` per row (default about square). Ready for ``PIL.Image.fromarray``."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images (N, h, w, 3), got shape {images.shape}")
    n, h, w, _ = images.shape
    scale = max(1, int(scale))
    cols = min(grid_cols(n, cols), max(n, 1))
    rows = max(1, -(-n // cols))
    th, tw = h * scale, w * scale
    out = np.full((rows * (th + gap) - gap, cols * (tw + gap) - gap, 3), background, dtype=np.uint8)
    tiles = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (th + gap): r * (th + gap) + th, c * (tw + gap): c * (tw + gap) + tw] = tiles[i]
    return out


def filter_grid_figure(filters: FilterSet, order: np.ndarray | None = None, cols: int | None = None,
                       scale: int | None = None, gap: int = 1, max_filters: int | None = None,
                       title: str | None = None) -> go.Figure:
    """The filters as colour images in a grid, in ``order`` (default index order), at most
    ``max_filters``. Each kernel is upscaled ``scale`` times by nearest neighbour (default:
    about 12 cells per kernel side) with ``gap`` cells of white between kernels; plotly draws
    the cells crisp at any zoom, so the figure stays small to send.

    One ``go.Image`` trace of the :func:`grid_image`; hovering shows the filter number, norm
    and colourfulness. The title states the normalisation."""
    idx = np.arange(len(filters)) if order is None else np.asarray(order, dtype=np.int64)
    if max_filters is not None:
        idx = idx[:max_filters]
    kh, kw = filters.kernel_size
    scale = max(1, int(scale) if scale else 12 // max(kh, kw))
    cols = min(grid_cols(len(idx), cols), max(len(idx), 1))
    img = grid_image(filters.images[idx], cols, scale, gap)
    # per-cell hover data: filter index, norm, colourfulness (-1 / NaN in the gaps)
    th, tw = kh * scale, kw * scale
    which = np.full(img.shape[:2], -1, dtype=np.int64)
    for i, f in enumerate(idx):
        r, c = divmod(i, cols)
        which[r * (th + gap): r * (th + gap) + th, c * (tw + gap): c * (tw + gap) + tw] = f
    inside = which >= 0
    custom = np.stack([
        which.astype(np.float32),
        np.where(inside, filters.norms[np.maximum(which, 0)], np.nan),
        np.where(inside, filters.colorfulness[np.maximum(which, 0)], np.nan),
    ], axis=-1).astype(np.float32)
    fig = go.Figure(go.Image(
        z=img, customdata=custom,
        hovertemplate="filter %{customdata[0]:.0f}<br>norm %{customdata[1]:.3g}"
                      "<br>colourfulness %{customdata[2]:.2f}<extra></extra>"))
    head = title or f"First-layer filters: {len(idx)} of {len(filters)}, {filters.in_channels}x{kh}x{kw}"
    px = max(1.0, min(8.0, 720 / max(img.shape[1], 1)))  # screen pixels per cell: lecture size
    fig.update_layout(
        title=f"{head}<br><sup>normalisation: {filters.normalization}</sup>",
        margin=dict(l=10, r=10, t=70, b=10),
        width=int(img.shape[1] * px) + 20, height=int(img.shape[0] * px) + 80,
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def filter_channels_figure(filters: FilterSet, index: int,
                           channel_names: tuple[str, ...] = ("red", "green", "blue")) -> go.Figure:
    """One filter's weights per input channel: one heatmap per channel (``C_in`` traces),
    diverging RdBu scale symmetric about 0 (weights divided by the filter's largest
    ``|weight|``), so the colour says which input colour excites (red) or inhibits (blue)."""
    w = channel_images(filters, index)
    c_in = len(w)
    names = [channel_names[c] if c < len(channel_names) else f"channel {c}" for c in range(c_in)]
    fig = make_subplots(rows=1, cols=c_in, subplot_titles=names, horizontal_spacing=0.04)
    for c in range(c_in):
        fig.add_trace(go.Heatmap(
            z=w[c], zmin=-1, zmax=1, zmid=0, colorscale="RdBu_r", showscale=c == c_in - 1,
            colorbar=dict(title="w / max|w|"), name=names[c],
            hovertemplate=f"{names[c]}<br>row %{{y}}, col %{{x}}<br>%{{z:.3f}}<extra></extra>",
        ), row=1, col=c + 1)
    for c in range(c_in):  # square cells, row 0 on top as in the image
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{c + 1 if c else ''}",
                         showticklabels=False, row=1, col=c + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(
        title=f"Filter {index}: weights per input channel (norm {filters.norms[index]:.3g}, "
              f"colourfulness {filters.colorfulness[index]:.2f})",
        margin=dict(l=10, r=10, t=70, b=10), height=320,
    )
    return fig
