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
