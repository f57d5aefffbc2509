"""Figures of one unit: its top and bottom dataset patches as a grid, the distribution of its
per-image peaks, and what knocking it out does to each class."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ..inspect.units import KnockoutResult

__all__ = ["knockout_figure", "patch_grid", "peak_histogram_figure"]


def patch_grid(patches: Sequence[np.ndarray], cols: int = 3, cell: int = 96, gap: int = 4,
               background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Patches (``(h, w, 3) uint8``, any sizes) upscaled by nearest neighbour to fit ``cell``
    pixels and laid out ``cols`` per row with ``gap``-pixel separators: ``(H, W, 3) uint8``."""
    if not len(patches):
        raise ValueError("no patches to lay out")
    rows = -(-len(patches) // cols)
    out = np.empty((rows * cell + (rows - 1) * gap, cols * cell + (cols - 1) * gap, 3), np.uint8)
    out[:] = background
    for i, p in enumerate(patches):
        h, w = p.shape[:2]
        scale = max(1, cell // max(h, w))
        big = p.repeat(scale, axis=0).repeat(scale, axis=1)[:cell, :cell]
        r, c = divmod(i, cols)
        top = r * (cell + gap) + (cell - big.shape[0]) // 2
        left = c * (cell + gap) + (cell - big.shape[1]) // 2
        out[top:top + big.shape[0], left:left + big.shape[1]] = big
    return out


def peak_histogram_figure(counts: np.ndarray, edges: np.ndarray, marks: Sequence[float] = (),
                          title: str = "") -> go.Figure:
    """Bars of ``counts`` over ``edges`` (from ``UnitExamples.histogram``); ``marks`` (e.g. the
    top-9's lowest peak) as dashed vertical lines."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_color="#4c72b0",
                           hovertemplate="peak %{x:.2f}: %{y} images<extra></extra>"))
    for m in marks:
        fig.add_vline(x=float(m), line_dash="dash", line_color="#c44e52")
    fig.update_layout(title=title, xaxis_title="the image's peak activation", yaxis_title="images",
                      margin=dict(l=10, r=10, t=50, b=10), height=280, bargap=0)
    return fig


def knockout_figure(result: KnockoutResult, classes: Sequence[str]) -> go.Figure:
    """Per-class recall change (percentage points) when the unit is zeroed: one bar per class,
    red where the class loses."""
    change = np.nan_to_num(result.recall_change) * 100
    fig = go.Figure(go.Bar(
        x=list(classes), y=change, marker_color=["#c44e52" if v < 0 else "#55a868" for v in change],
        customdata=np.stack([result.recall_before * 100, result.recall_after * 100], axis=1),
        hovertemplate="%{x}: %{customdata[0]:.1f}% -> %{customdata[1]:.1f}% (%{y:+.1f} points)<extra></extra>"))
    chans = ", ".join(map(str, result.channels))
    fig.update_layout(title=f"Recall change per class with {result.layer} channel {chans} zeroed "
                            f"(accuracy {result.accuracy_before:.1%} -> {result.accuracy_after:.1%})",
                      yaxis_title="recall change (points)", margin=dict(l=10, r=10, t=50, b=10), height=320)
    return fig
