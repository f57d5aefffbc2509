"""Nearest-neighbour figures: AlexNet's figure 4 for one image (a Plotly figure, for the lecture
deck), and neighbour purity per class (a Vega-Lite chart, Altair, for pages)."""

from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..inspect.neighbours import PurityResult


def _caption(captions: Sequence[str] | None, i: int) -> str:
    return captions[i] if captions is not None and i < len(captions) else ""


def _grid(feature_images: np.ndarray, pixel_images: np.ndarray | None,
          feature_captions: Sequence[str] | None, pixel_captions: Sequence[str] | None,
          ) -> tuple[go.Figure, int, int]:
    """:func:`neighbours_figure`'s empty subplots, captions as titles: ``(figure, rows, cols)``."""
    k = len(feature_images)
    cols = max(k, 2, len(pixel_images) if pixel_images is not None else 0)
    rows = 2 if pixel_images is None else 3
    specs: list[list[dict | None]] = [[{"type": "image"}, {"type": "bar", "colspan": cols - 1}]
                                      + [None] * (cols - 2)]
    titles = ["test image", "top predictions"]
    specs.append([{"type": "image"}] * cols)
    titles += [_caption(feature_captions, i) for i in range(cols)]
    if pixel_images is not None:
        specs.append([{"type": "image"}] * cols)
        titles += [_caption(pixel_captions, i) for i in range(cols)]
    fig = make_subplots(rows=rows, cols=cols, specs=specs, subplot_titles=titles,
                        row_heights=[1.0] * rows, vertical_spacing=0.16, horizontal_spacing=0.02)
    return fig, rows, cols


def neighbours_figure(
    query: np.ndarray,
    top_classes: Sequence[tuple[str, float]],
    feature_images: np.ndarray,
    pixel_images: np.ndarray | None = None,
    feature_captions: Sequence[str] | None = None,
    pixel_captions: Sequence[str] | None = None,
    title: str = "",
) -> go.Figure:
    """A test image, its top predictions, and its nearest training images (AlexNet figure 4).

    ``query``: ``(H, W, 3) uint8``; ``top_classes``: ``(class name, probability)`` pairs, most
    probable first (e.g. the top 5); ``feature_images``: ``(k, H, W, 3) uint8`` nearest in
    feature space; ``pixel_images``: the same for raw pixels (row left out when ``None``);
    captions (class, distance) go above each neighbour.

    Traces: 1 image + 1 bar + ``k`` feature images (+ ``k`` pixel images).
    """
    fig, rows, cols = _grid(feature_images, pixel_images, feature_captions, pixel_captions)
    fig.add_trace(go.Image(z=np.asarray(query, np.uint8), hoverinfo="skip", name="test image"), 1, 1)
    names = [c for c, _ in top_classes][::-1]  # most probable at the top
    probs = [float(p) for _, p in top_classes][::-1]
    fig.add_trace(go.Bar(x=probs, y=names, orientation="h", name="probability",
                         text=[f"{n}  {p:.1%}" for n, p in zip(names, probs)], textposition="outside",
                         cliponaxis=False, hovertemplate="%{y}: %{x:.1%}<extra></extra>"), 1, 2)
    # the axis runs past 100% to leave room for the bar labels; ticks stop at 100%
    fig.update_xaxes(range=[0, 1.35], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%", row=1, col=2)
    fig.update_yaxes(showticklabels=False, row=1, col=2)  # class names ride on the bars
    for i, img in enumerate(feature_images):
        fig.add_trace(go.Image(z=np.asarray(img, np.uint8), name=_caption(feature_captions, i),
                               hoverinfo="name"), 2, i + 1)
    if pixel_images is not None:
        for i, img in enumerate(pixel_images):
            fig.add_trace(go.Image(z=np.asarray(img, np.uint8), name=_caption(pixel_captions, i),
                                   hoverinfo="name"), 3, i + 1)
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            if r == 1 and c == 2:
                continue
            if r == 1 and c > 2:
                break
            fig.update_xaxes(visible=False, row=r, col=c)
            fig.update_yaxes(visible=False, row=r, col=c)
    fig.update_annotations(font_size=11)
    row_names = {2: "nearest in feature space", 3: "nearest in pixel space"}
    for r in range(2, rows + 1):  # a label over each neighbour row, left-aligned
        top = fig.get_subplot(r, 1).yaxis.domain[1]
        fig.add_annotation(text=f"<b>{row_names[r]}</b>", xref="paper", yref="paper", x=0, y=top + 0.075,
                           xanchor="left", yanchor="bottom", showarrow=False, font_size=12)
    fig.update_layout(title=title or None, showlegend=False, height=170 * rows + 60,
                      margin=dict(l=40, r=10, t=60 if title else 40, b=10))
    return fig


def purity_chart(result: PurityResult, classes: Sequence[str], pixels: PurityResult | None = None,
                 height: int = 300) -> alt.LayerChart:
    """Bar per class of mean neighbour purity (fraction of the ``k`` nearest training images that
    share the test image's class), with the overall mean as a dashed rule. With ``pixels`` (the
    same measure in raw pixel space), grouped bars compare the two spaces (grey: pixels)."""
    names = list(classes)[: len(result.per_class)]
    spaces = [("penultimate features", result)] + ([("raw pixels", pixels)] if pixels is not None else [])
    labels = [f"{label} (overall {res.overall:.1%})" for label, res in spaces]
    bars = pd.DataFrame([{"class": c, "space": lab, "purity": float(np.nan_to_num(res.per_class[i], nan=0.0)),
                          "test images": int(res.support[i])}
                         for lab, (_, res) in zip(labels, spaces) for i, c in enumerate(names)])
    overall = pd.DataFrame({"space": labels, "overall": [res.overall for _, res in spaces]})
    colour = alt.Color("space:N", title=None, sort=labels, legend=alt.Legend(orient="bottom") if pixels else None,
                       scale=alt.Scale(domain=labels, range=["#1f77b4", "#aaaaaa"][: len(labels)]))
    chart = alt.Chart(bars).mark_bar().encode(
        x=alt.X("class:N", sort=names, title=None, axis=alt.Axis(labelAngle=-45 if len(names) > 8 else 0)),
        xOffset=alt.XOffset("space:N", sort=labels), y=alt.Y("purity:Q", title="same-class neighbours",
                                                             scale=alt.Scale(domain=[0, 1.05]),
                                                             axis=alt.Axis(format="%")),
        color=colour, tooltip=["space:N", "class:N", alt.Tooltip("purity:Q", format=".1%"), "test images:Q"])
    rules = alt.Chart(overall).mark_rule(strokeDash=[5, 3]).encode(y="overall:Q", color=colour)
    where = result.metric if pixels is None else f"features {result.metric}, pixels {pixels.metric}"
    return alt.layer(chart, rules).properties(
        title=f"{result.k}-nearest-neighbour purity by class ({where})", height=height)
