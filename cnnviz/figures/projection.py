"""Scatter of a 2-D projection, one colour per class, clickable and box-selectable (a Vega-Lite
chart), and PNG thumbnails of images as data URIs."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from ..class_names import class_display_name
from ..inspect.projection import Projection


_METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP", "spectral": "Spectral embedding"}


def thumbnails_b64(images: np.ndarray, size: int = 32) -> list[str]:
    """``(N, H, W, 3) uint8`` -> ``N`` PNG data URIs (``data:image/png;base64,...``), each at most
    ``size`` px on its longer side. CIFAR-10 at 32 px: ~1,800 per second on one busy core and
    ~2.8 KB each, so 10,000 points take ~5 s and ~28 MB of figure JSON: cache the result in a UI,
    and for large sets consider sending only the row index (``customdata[0]``) instead."""
    out = []
    for img in np.asarray(images, np.uint8):
        pil = Image.fromarray(img)
        if max(pil.size) > size:
            pil.thumbnail((size, size), Image.BILINEAR)
        buf = io.BytesIO()
        pil.save(buf, "PNG", compress_level=1)
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def projection_chart(projection: Projection, classes: Sequence[str] | None = None,
                     ids: Sequence[str] | None = None, title: str | None = None, height: int = 480) -> alt.Chart:
    """Scatter of ``projection.xy`` ``(N, 2)``, one colour per class (legend), hover giving each
    point's id and class. Two selections for a UI to read: ``pick`` (a click, shift-click for
    more; its field ``row`` is the point's row) and ``box`` (a dragged rectangle over ``x`` and
    ``y``; :func:`rows_in_box` turns it into rows). A Vega-Lite chart (Altair)."""
    xy = np.asarray(projection.xy, np.float32)
    n = len(xy)
    if ids is not None and len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} points")
    labels = projection.labels
    names = ["points"] * n if labels is None else [_class_name(classes, int(c)) for c in labels]
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "row": np.arange(n), "class": names,
                       "id": list(ids) if ids is not None else [str(i) for i in range(n)]})
    pick = alt.selection_point(name="pick", fields=["row"], on="click", toggle="event.shiftKey")
    box = alt.selection_interval(name="box", encodings=["x", "y"])
    order = list(dict.fromkeys(_class_name(classes, int(c)) for c in np.unique(labels))) if labels is not None else None
    if title is None:
        title = f"{_METHOD_NAMES.get(projection.method, projection.method)} of {n:,} points"
    return alt.Chart(df, title=title).mark_circle(size=18, opacity=0.8).encode(
        x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None),
        color=alt.Color("class:N", sort=order, title=None, legend=alt.Legend(orient="right", labelLimit=0)),
        tooltip=["id:N", "class:N"],
    ).add_params(pick, box).properties(height=height)


def rows_in_box(projection: Projection, box: dict) -> list[int]:
    """Rows of the points inside a ``box`` selection of :func:`projection_chart` (``{"x": [lo,
    hi], "y": [lo, hi]}``, either order), in row order; empty for an empty or partial box."""
    if not box or "x" not in box or "y" not in box:
        return []
    xy = np.asarray(projection.xy, np.float64)
    (x0, x1), (y0, y1) = sorted(map(float, box["x"])), sorted(map(float, box["y"]))
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return np.flatnonzero(inside).tolist()


def _class_name(classes: Sequence[str] | None, c: int) -> str:
    if c < 0:
        return "unlabelled"
    return class_display_name(classes[c]) if classes is not None and c < len(classes) else str(c)
