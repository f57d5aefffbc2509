"""Figures of first-layer filters, and a PNG-ready grid of small images."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..inspect.feature_maps import grid_cols
from ..inspect.filters import FilterSet, channel_images

__all__ = ["MEASURES_HELP", "filter_channels_figure", "filter_grid_figure", "grid_image", "kernel_measures_text",
           "kernel_orientation_text", "lecture_grid", "png_bytes"]

LECTURE_WIDTH = 1200


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


def lecture_grid(filters: FilterSet, order: np.ndarray | None = None, min_width: int = LECTURE_WIDTH,
                 cols: int | None = None, gap: int = 2) -> np.ndarray:
    """The kernel grid for a slide: ``(H, W, 3) uint8`` at least ``min_width`` pixels wide, each
    kernel upscaled by nearest neighbour (sharp pixels, no blur) with ``gap``-pixel white
    separators, in ``order`` (default: as learned)."""
    idx = np.arange(len(filters)) if order is None else np.asarray(order)
    n, kw = len(idx), filters.kernel_size[1]
    cols = min(grid_cols(n, cols), max(n, 1))
    scale = max(1, -(-(min_width - (cols - 1) * gap) // (cols * kw)))
    return grid_image(filters.images[idx], cols, scale, gap)


def png_bytes(image: np.ndarray) -> bytes:
    """``(H, W, 3) uint8`` -> PNG file bytes (for a download button or a file)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


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
    """One filter's weights per input channel, side by side in one heatmap (one column of gap
    between channels, each labelled above), diverging RdBu scale symmetric about 0 (weights
    divided by the filter's largest ``|weight|``), so the colour says which input colour
    excites (red) or inhibits (blue). Hover gives channel, row, column and value.

    A single trace on one pair of axes: a browser draws it several times faster than one
    subplot per channel."""
    w = channel_images(filters, index)
    c_in, kh, kw = w.shape
    names = [channel_names[c] if c < len(channel_names) else f"channel {c}" for c in range(c_in)]
    width = c_in * (kw + 1) - 1
    z = np.full((kh, width), np.nan, dtype=np.float32)
    which = np.full((kh, width), -1, dtype=np.int16)
    for c in range(c_in):
        z[:, c * (kw + 1): c * (kw + 1) + kw] = w[c]
        which[:, c * (kw + 1): c * (kw + 1) + kw] = c
    col = np.broadcast_to(np.arange(width) % (kw + 1), (kh, width))
    row = np.broadcast_to(np.arange(kh)[:, None], (kh, width))
    label = np.where(which >= 0, np.asarray(names, dtype=object)[np.maximum(which, 0)], "")
    fig = go.Figure(go.Heatmap(
        z=z, zmin=-1, zmax=1, zmid=0, colorscale="RdBu_r", colorbar=dict(title="w / max|w|"),
        customdata=np.stack([label, row, col], axis=-1), hoverongaps=False,
        hovertemplate="%{customdata[0]}<br>row %{customdata[1]}, col %{customdata[2]}"
                      "<br>%{z:.3f}<extra></extra>"))
    for c, name in enumerate(names):
        fig.add_annotation(x=c * (kw + 1) + (kw - 1) / 2, y=-0.5, text=name, showarrow=False,
                           yanchor="bottom", yshift=4)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(
        title=f"Filter {index}: weights per input channel (norm {filters.norms[index]:.3g}, "
              f"colourfulness {filters.colorfulness[index]:.2f})",
        margin=dict(l=10, r=10, t=80, b=10), height=320, plot_bgcolor="white",
    )
    return fig


#: What the two kernel measures mean, in plain words (the Filters page's tooltip).
MEASURES_HELP = (
    "Structure: how much of a kernel's energy sits in a few spatial frequencies (0 = as random as white "
    "noise, 1 = one clean pattern). Oriented: a kernel whose light-dark changes all run one way, as an "
    "edge or a stripe detector's do (orientation selectivity, 0 = no preferred direction as in a blob or "
    "noise, 1 = one direction); counted from 0.5 up. Grey: the kernel weighs red, green and blue alike, "
    "so it sees brightness, not colour."
)


def kernel_measures_text(filters: FilterSet) -> str:
    """One sentence of what the kernels' measures say: structure, and how many are oriented
    (how many of those grey, at how many of four orientations) when the kernels can have one."""
    ks, n = filters.structure, len(filters)
    text = (f"Kernel structure: mean {ks.mean:.2f} (0 = white noise, 1 = all energy in the {ks.k} strongest "
            f"spatial frequencies); {ks.structured} of {n} more structured than 99% of random kernels.")
    ko = filters.orientation
    if ko is None:
        return text + f" Kernels of {filters.kernel_size[0]}x{filters.kernel_size[1]} are too small to have an orientation."
    if ko.count == 0:
        return text + f" None of the {n} is oriented (an edge or stripe detector)."
    return text + (f" Oriented (edge or stripe detectors): {ko.count} of {n} ({ko.fraction:.0%}), "
                   f"{filters.grey_oriented} of them grey, at {ko.orientations()} of 4 orientations.")


def kernel_orientation_text(filters: FilterSet, index: int) -> str:
    """``", orientation 0.83 (edge at 45°, period 4.2 px)"`` for one filter; empty without a measure."""
    ko = filters.orientation
    if ko is None:
        return ""
    sel = float(ko.selectivity[index])
    if not ko.oriented[index]:
        return f", orientation {sel:.2f} (not oriented)"
    period = float(ko.wavelength[index])
    return f", orientation {sel:.2f} (edge at {ko.angle[index]:.0f}°, period {period:.1f} px)"
