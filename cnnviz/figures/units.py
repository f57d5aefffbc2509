"""Figures of one unit: its top and bottom dataset patches as a grid (a picture), the
distribution of its per-image peaks and what knocking it out does to each class (Vega-Lite
charts, Altair: a page draws them for a fraction of a Plotly figure's cost)."""

from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from ..class_names import class_display_names
from ..inspect.units import KnockoutResult

__all__ = ["knockout_chart", "patch_grid", "peak_histogram_chart"]


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


def peak_histogram_chart(counts: np.ndarray, edges: np.ndarray, marks: Sequence[float] = (),
                         title: str | Sequence[str] = "", height: int = 240) -> alt.LayerChart:
    """Bars of ``counts`` over ``edges`` (from ``UnitExamples.histogram``); ``marks`` (e.g. the
    top-9's lowest peak) as dashed red rules. Hover gives each bin's range and count. ``title``:
    a line, or several (a narrow column would cut a long one with an ellipsis)."""
    edges = np.asarray(edges, np.float64)
    bins = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "images": np.asarray(counts, np.int64)})
    bars = alt.Chart(bins).mark_bar(color="#4c72b0").encode(
        x=alt.X("from:Q", title="the image's peak activation", bin="binned"), x2="to:Q",
        y=alt.Y("images:Q", title="images"),
        tooltip=[alt.Tooltip("from:Q", format=".2f"), alt.Tooltip("to:Q", format=".2f"), "images:Q"])
    rules = alt.Chart(pd.DataFrame({"peak": [float(m) for m in marks]})).mark_rule(
        color="#c44e52", strokeDash=[5, 3], size=2).encode(x="peak:Q")
    return alt.layer(bars, rules).properties(title=title if isinstance(title, str) else list(title), height=height)


def knockout_chart(result: KnockoutResult, classes: Sequence[str], height: int = 280) -> alt.Chart:
    """Per-class recall change (percentage points) when the unit is zeroed: one bar per class,
    red where the class loses, green where it gains; hover gives recall before and after. Class
    names are written whole (no ellipsis), slanted past 8 classes; the chart grows by their height."""
    change = np.nan_to_num(result.recall_change) * 100
    classes = class_display_names(classes)
    df = pd.DataFrame({"class": classes, "change": change, "before": result.recall_before * 100,
                       "after": result.recall_after * 100, "loses": change < 0})
    chans = ", ".join(map(str, result.channels))
    slanted = round(0.71 * 7 * max(map(len, classes), default=0)) if len(classes) > 8 else 0  # ~7 px a letter at 45°
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=list(classes), title=None,
                axis=alt.Axis(labelLimit=0, labelOverlap=False, labelAngle=-45 if len(classes) > 8 else 0)),
        # at least +-1 point, so a unit that changes nothing gets a plain axis, not 0.000000
        y=alt.Y("change:Q", title="recall change (points)",
                scale=alt.Scale(domain=[min(-1.0, float(change.min(initial=0))), max(1.0, float(change.max(initial=0)))])),
        color=alt.Color("loses:N", legend=None, scale=alt.Scale(domain=[True, False], range=["#c44e52", "#55a868"])),
        tooltip=["class:N", alt.Tooltip("before:Q", format=".1f", title="recall before (%)"),
                 alt.Tooltip("after:Q", format=".1f", title="recall after (%)"),
                 alt.Tooltip("change:Q", format="+.1f", title="change (points)")],
    ).properties(title=f"Recall change per class with {result.layer} channel {chans} zeroed "
                       f"(accuracy {result.accuracy_before:.1%} -> {result.accuracy_after:.1%})",
                       height=height + slanted)
