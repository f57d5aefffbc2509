"""Scatter of a 2-D projection, one colour per class, each point carrying its image thumbnail."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

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


def projection_figure(
    projection: Projection,
    classes: Sequence[str] | None = None,
    images: np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    thumbnails: Sequence[str] | None = None,
    thumb_size: int = 32,
    marker_size: int = 4,
    title: str | None = None,
) -> go.Figure:
    """Scatter of ``projection.xy`` ``(N, 2)``, one WebGL trace per class present (one trace when
    there are no labels), so the legend toggles classes.

    Each point's ``customdata`` is ``[row index, PNG data URI or ""]`` for a UI to show the image
    on hover or click; its hover text gives the id and class. Thumbnails come from
    ``thumbnails`` (precomputed with :func:`thumbnails_b64`) or are made from ``images``
    ``(N, H, W, 3) uint8``.
    """
    xy = np.asarray(projection.xy, np.float32)
    n = len(xy)
    if thumbnails is None and images is not None:
        thumbnails = thumbnails_b64(images, thumb_size)
    if thumbnails is not None and len(thumbnails) != n:
        raise ValueError(f"{len(thumbnails)} thumbnails for {n} points")
    if ids is not None and len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} points")
    labels = projection.labels
    groups: list[tuple[str, np.ndarray, int | None]]
    if labels is None:
        groups = [("points", np.arange(n), None)]
    else:
        present = np.unique(labels)
        groups = [(_class_name(classes, c), np.flatnonzero(labels == c), int(c)) for c in present]
    fig = go.Figure()
    for name, rows, _ in groups:
        hover = [f"{ids[i] if ids is not None else i}<br>{name}" for i in rows]
        custom = np.empty((len(rows), 2), dtype=object)
        custom[:, 0] = rows
        custom[:, 1] = [thumbnails[i] for i in rows] if thumbnails is not None else ""
        fig.add_trace(go.Scattergl(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=name,
            marker=dict(size=marker_size, opacity=0.8), hovertext=hover, hoverinfo="text",
            customdata=custom,
        ))
    if title is None:
        title = f"{_METHOD_NAMES.get(projection.method, projection.method)} of {n:,} points"
    fig.update_layout(
        title=title,
        xaxis=dict(showticklabels=False, zeroline=False, title=""),
        yaxis=dict(showticklabels=False, zeroline=False, title="", scaleanchor="x"),
        legend=dict(itemsizing="constant"), hovermode="closest",
    )
    return fig


def _class_name(classes: Sequence[str] | None, c: int) -> str:
    if c < 0:
        return "unlabelled"
    return str(classes[c]) if classes is not None and c < len(classes) else str(c)
