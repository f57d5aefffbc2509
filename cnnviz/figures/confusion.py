"""Confusion matrices and per-class precision/recall/F1 bars: Vega-Lite charts (Altair) for pages,
which a browser draws for a fraction of a Plotly figure's cost, and a Plotly heatmap for the
lecture deck."""

from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..inspect.confusion import ConfusionResult


def readable_class_names(classes: Sequence[str], max_len: int = 18) -> list[str]:
    """Tick labels: underscores as spaces, long names shortened with an ellipsis
    (``abraham_grampa_simpson`` -> ``abraham grampa si…``); full names stay in the hover text."""
    out = []
    for c in classes:
        c = str(c).replace("_", " ")
        out.append(c if len(c) <= max_len else c[: max_len - 1].rstrip() + "…")
    if len(set(out)) < len(out):  # shortening merged two names: a category axis would too
        out = [f"{c} ({i})" for i, c in enumerate(out)]
    return out


def confusion_heatmap(result: ConfusionResult, normalised: bool = False, show_values: bool | None = None,
                      title: str | None = None) -> go.Figure:
    """Heatmap of the confusion matrix, true classes down the side (first at the top), predicted
    along the bottom. ``normalised``: colour by the row-normalised rate instead of the count.
    Cell values are written in when ``show_values`` (default: 20 classes or fewer). One trace."""
    k = result.num_classes
    names = readable_class_names(result.classes)
    counts = result.counts
    rates = result.normalised
    z = rates if normalised else counts
    hover = [[f"true: {result.classes[i]}<br>predicted: {result.classes[j]}<br>"
              f"{counts[i, j]} of {int(result.support[i])} ({rates[i, j]:.1%})"
              for j in range(k)] for i in range(k)]
    if show_values is None:
        show_values = k <= 20
    text = [[(f"{rates[i, j]:.0%}" if normalised else str(counts[i, j])) if counts[i, j] else ""
             for j in range(k)] for i in range(k)]
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", hovertext=hover, hoverinfo="text",
        text=text if show_values else None, texttemplate="%{text}" if show_values else None,
        textfont=dict(size=10 if k > 12 else 12), zmin=0, zmax=1 if normalised else None,
        colorbar=dict(title="rate" if normalised else "images", tickformat=".0%" if normalised else None),
        xgap=1, ygap=1,
    ))
    side = max(420, 28 * k + 200)
    fig.update_layout(
        title=title if title is not None else
        (f"confusion (row-normalised), accuracy {result.accuracy:.1%}" if normalised
         else f"confusion (counts), accuracy {result.accuracy:.1%}"),
        xaxis=dict(title="predicted", tickangle=-45, automargin=True, type="category"),
        yaxis=dict(title="true", autorange="reversed", automargin=True, type="category"),
        width=side + 120, height=side,
    )
    return fig


def confusion_chart(result: ConfusionResult, normalised: bool = False, show_values: bool | None = None,
                    title: str | None = None) -> alt.LayerChart:
    """The confusion matrix as coloured cells, true classes down the side (first at the top),
    predicted along the bottom; ``normalised`` colours by the row-normalised rate instead of the
    count. Cell values are written in when ``show_values`` (default: 20 classes or fewer).
    A click selects a cell: the selection ``cell`` carries its ``true`` and ``pred`` class
    numbers. Hover gives the full class names, the count and the rate."""
    k = result.num_classes
    names = readable_class_names(result.classes)
    counts, rates = result.counts, result.normalised
    if show_values is None:
        show_values = k <= 20
    df = pd.DataFrame([{
        "true class": names[i], "predicted class": names[j], "true": i, "pred": j,
        "true name": str(result.classes[i]), "predicted name": str(result.classes[j]),
        "images": int(counts[i, j]), "of": int(result.support[i]), "rate": float(rates[i, j]),
        "value": float(rates[i, j] if normalised else counts[i, j]),
        "text": ((f"{rates[i, j]:.0%}" if normalised else str(counts[i, j])) if counts[i, j] else ""),
    } for i in range(k) for j in range(k)])
    top = 1.0 if normalised else max(float(counts.max()), 1.0)
    df["dark"] = df["value"] > 0.6 * top  # white text on dark cells
    cell = alt.selection_point(name="cell", fields=["true", "pred"], on="click")
    step = 36 if k <= 20 else 22  # pixels per cell: room for the values and the class names
    x = alt.X("predicted class:N", sort=names, title="predicted", axis=alt.Axis(labelAngle=-45, labelOverlap=False))
    y = alt.Y("true class:N", sort=names, title="true", axis=alt.Axis(labelOverlap=False))
    rect = alt.Chart(df).mark_rect(stroke="white", strokeWidth=1).encode(
        x=x, y=y,
        color=alt.Color("value:Q", title="rate" if normalised else "images",
                        scale=alt.Scale(scheme="blues", domain=[0, top]),
                        legend=alt.Legend(format=".0%" if normalised else "d")),
        opacity=alt.condition(cell, alt.value(1.0), alt.value(0.55)),
        tooltip=[alt.Tooltip("true name:N", title="true"), alt.Tooltip("predicted name:N", title="predicted"),
                 alt.Tooltip("images:Q"), alt.Tooltip("of:Q", title="of true class"),
                 alt.Tooltip("rate:Q", format=".1%")],
    ).add_params(cell)
    layers = [rect]
    if show_values:
        layers.append(alt.Chart(df).mark_text(fontSize=10 if k > 12 else 12).encode(
            x=x, y=y, text="text:N",
            color=alt.condition(alt.datum.dark, alt.value("white"), alt.value("black"))))
    head = title if title is not None else (
        f"confusion (row-normalised), accuracy {result.accuracy:.1%}" if normalised
        else f"confusion (counts), accuracy {result.accuracy:.1%}")
    return alt.layer(*layers).properties(title=head, width=alt.Step(step), height=alt.Step(step))


def class_metrics_chart(result: ConfusionResult, title: str = "precision, recall and F1 by class",
                        height: int = 300) -> alt.Chart:
    """Grouped bars of per-class precision, recall and F1; hover gives the class and its images."""
    names = readable_class_names(result.classes)
    metrics = ("precision", "recall", "F1")
    df = pd.DataFrame([{"class": names[i], "name": str(result.classes[i]), "metric": label,
                        "value": float(np.nan_to_num(values[i])), "images": int(result.support[i])}
                       for label, values in zip(metrics, (result.precision, result.recall, result.f1))
                       for i in range(len(names))])
    return alt.Chart(df, title=title).mark_bar().encode(
        x=alt.X("class:N", sort=names, title=None, axis=alt.Axis(labelAngle=-45 if len(names) > 8 else 0)),
        xOffset=alt.XOffset("metric:N", sort=list(metrics)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("metric:N", sort=list(metrics), title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("name:N", title="class"), "metric:N", alt.Tooltip("value:Q", format=".1%"),
                 "images:Q"],
    ).properties(height=height)


# -- the confusion matrix as a picture drawn at its final size (slides and files) ---------------

_DARK_BLUE = np.array([8, 48, 107], np.float64)


def most_confused(result: ConfusionResult) -> tuple[int, int, int] | None:
    """``(true class, predicted class, images)`` of the largest off-diagonal count (the first
    such pair on a tie), or None when nothing is confused."""
    off = np.asarray(result.counts, np.int64).copy()
    np.fill_diagonal(off, 0)
    if not off.size or off.max() <= 0:
        return None
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    return int(i), int(j), int(off[i, j])


def draw_confusion(canvas, box: tuple[int, int, int, int], result: ConfusionResult, size: int = 20,
                   max_cell: int = 64) -> tuple[int, int]:
    """The confusion matrix inside ``box`` of a :class:`~cnnviz.figures.pictures.TextCanvas`:
    one row per true class, labelled ``n  class name`` in full, and one column per predicted
    class, numbered as the rows; each cell coloured by its row's rate (white: never, dark blue:
    always) with its count written in. Cells are square, as large as fit (at most ``max_cell``).
    Returns the ``(width, height)`` drawn. Where the box is too small for ``size`` px text in a
    cell, counts are left out rather than drawn smaller."""
    from .pictures import line_height, text_width  # noqa: PLC0415

    x0, y0, x1, y1 = box
    k = result.num_classes
    names = [f"{i + 1}  {str(c).replace('_', ' ')}" for i, c in enumerate(result.classes)]
    lh = line_height(size)
    label_w = int(max(text_width(n, size) for n in names)) + 12
    head = lh + 8
    corner = "true \u2193  predicted \u2192"
    label_w = max(label_w, int(text_width(corner, size)) + 12 - 0)
    cell = int(min(max_cell, (x1 - x0 - label_w) / max(k, 1), (y1 - y0 - head) / max(k, 1)))
    if cell < lh:  # no room for names beside the rows: the numbers alone
        label_w = int(text_width(str(k), size)) + 12
        cell = int(min(max_cell, (x1 - x0 - label_w) / max(k, 1), (y1 - y0 - head) / max(k, 1)))
    cell = max(cell, 2)
    counts, rates = np.asarray(result.counts), np.asarray(result.normalised)
    show = cell >= lh + 2 and cell >= text_width(str(int(counts.max(initial=0))), size) + 6
    gx, gy = x0 + label_w, y0 + head
    canvas.text(x0, y0, corner, size, (90, 90, 90)) if label_w > text_width(corner, size) else None
    for j in range(k):
        if cell >= text_width(str(j + 1), size) + 2:
            canvas.text(gx + j * cell + cell / 2, y0 + 2, str(j + 1), size, (60, 60, 60), align="center")
    for i in range(k):
        y = gy + i * cell
        if cell >= lh:
            label = names[i] if label_w > text_width(str(k), size) + 12 else str(i + 1)
            canvas.text(x0, y + (cell - lh) / 2, label, size, (20, 20, 20))
        for j in range(k):
            x = gx + j * cell
            t = float(rates[i, j])
            colour = tuple(int(v) for v in np.rint(255 + (_DARK_BLUE - 255) * t))
            canvas.draw.rectangle([x, y, x + cell - 2, y + cell - 2], fill=colour,
                                  outline=(225, 225, 225) if not counts[i, j] else None)
            if show and counts[i, j]:
                canvas.text(x + (cell - 1) / 2, y + (cell - 1 - lh) / 2, str(int(counts[i, j])), size,
                            (255, 255, 255) if t > 0.5 else (20, 20, 20), align="center")
    return label_w + k * cell, head + k * cell
